"""The dashboard in a real headless chromium (Debian's, driven by Playwright) against a real uvicorn
server over a real SQLite store. Screenshots of every page go to tests/dashboard/artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashkit import (
    ARTIFACTS,
    XSS_ERROR,
    XSS_LABEL,
    ThreadServer,
    browser,
    chromium_path,
    create_search,
    fake_result,
    run_fake_trials,
)

from hyperhive.models import SearchStatus, TrialResult, WorkerInfo
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
PLOT = ".main-svg"


@dataclass
class World:
    url: str
    store: SQLiteStore
    alice: str
    bob: str
    admin: str
    search_id: str
    live_id: str
    bob_search_id: str
    done_id: str
    failed_id: str
    xss_trial_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("dash")
    store = SQLiteStore(tmp / "hh.db")
    settings = Settings(store=f"sqlite:///{tmp / 'hh.db'}", home=tmp / "home")  # type: ignore[call-arg]
    _, alice = store.create_token("alice")
    _, bob = store.create_token("bob")
    _, admin = store.create_token("root", admin=True)
    search = create_search(store, "alice", "conditional", 12)
    done = run_fake_trials(store, search, 7)
    xss = run_fake_trials(store, search, 1, labels=["cat", XSS_LABEL, "bird"])
    failing = store.claim("w-dash", 60.0, search_id=search.id)
    assert failing is not None and failing.lease_token is not None
    store.report(failing.id, failing.lease_token, TrialResult.failed(XSS_ERROR))
    live = create_search(store, "alice", "live-one", 20)
    run_fake_trials(store, live, 2)
    bobs = create_search(store, "bob", "bobs-private", 3)
    run_fake_trials(store, bobs, 1)
    store.register_worker(
        WorkerInfo(
            id="w-dash",
            host="gpu-box-1",
            pid=4242,
            started_at=store.clock(),
            last_seen=store.clock(),
            gpus=["GPU:0"],
            status="idle",
        )
    )
    with ThreadServer(settings, store) as server:
        yield World(
            server.url, store, alice, bob, admin, search.id, live.id, bobs.id, done[0], failing.id, xss[0]
        )
    store.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    with browser() as b:
        yield b


class Tab:
    """A page in its own browser context, recording console errors and uncaught exceptions."""

    def __init__(self, chromium: Any, world: World, token: str | None) -> None:
        self.context = chromium.new_context(viewport={"width": 1300, "height": 900})
        if token is not None:
            self.context.add_cookies([{"name": "hyperhive_session", "value": token, "url": world.url}])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = world.url

    def goto(self, path: str) -> Any:
        return self.page.goto(self.url + path)

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        self.context.close()

    def serious_a11y_violations(self) -> list[str]:
        """axe-core's serious and critical findings on the current page (``rule: where``)."""
        from axe_playwright_python.sync_playwright import Axe

        found = Axe().run(self.page).response["violations"]
        return [
            f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
            for v in found
            if v.get("impact") in ("serious", "critical")
        ]


@pytest.fixture
def tab_factory(chromium: Any, world: World) -> Iterator[Any]:
    tabs: list[Tab] = []

    def make(token: str | None) -> Tab:
        tabs.append(Tab(chromium, world, token))
        return tabs[-1]

    yield make
    for t in tabs:
        t.close()


def test_sign_in_is_required_and_shows_only_your_searches(world: World, tab_factory: Any) -> None:
    tab = tab_factory(None)
    tab.goto(f"/searches/{world.search_id}")
    assert tab.page.url.startswith(world.url + "/login")
    tab.page.fill("#token", "hh_not-a-token")
    tab.page.click("button[type=submit]")
    assert "Unknown or revoked token" in tab.page.inner_text("main")
    tab.page.fill("#token", world.alice)
    tab.shot("login")
    tab.page.click("button[type=submit]")
    # back to the page asked for, now signed in
    assert tab.page.url == f"{world.url}/searches/{world.search_id}"
    tab.goto("/")
    names = tab.page.locator("#searches tbody td:first-child").all_inner_texts()
    assert sorted(names) == ["conditional", "live-one"]
    assert "bobs-private" not in tab.page.content()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "hyperhive_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    tab.shot("searches")
    assert tab.errors == []
    tab.page.click("text=Sign out")
    tab.goto("/")
    assert tab.page.url.startswith(world.url + "/login")


def test_admin_sees_every_search_with_its_owner(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.admin)
    tab.goto("/?sort=name&desc=false")
    rows = tab.page.locator("#searches tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == ["bobs-private", "conditional", "live-one"]
    assert "bob" in rows[0]
    tab.goto("/?q=live")
    assert tab.page.locator("#searches tbody tr").count() == 1


def test_another_users_search_and_trial_are_not_found(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    response = tab.goto(f"/searches/{world.bob_search_id}")
    assert response.status == 404
    assert "No such search" in tab.page.inner_text("main")
    assert "bobs-private" not in tab.page.content()
    api = tab.context.request.get(f"{world.url}/dashboard-api/searches/{world.bob_search_id}/rows")
    assert api.status == 404


@pytest.mark.slow  # draws plotly plots: 5-25 s on a busy 2-core machine
def test_search_page_draws_every_plot_and_the_table(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    tab.goto(f"/searches/{world.search_id}")
    for plot in ("#history", "#parcoords", "#curves", "#slices", "#importance"):
        tab.page.wait_for_selector(f"{plot} {PLOT}", timeout=15_000)
    # states are drawn: done markers, the best-so-far line, the failed trial in the strip below
    legend = tab.page.locator("#history .legendtext").all_text_contents()
    assert {"done", "best so far", "failed"} <= set(legend)
    # the conditional block's filters are inactive in some trials: an "(inactive)" tick, not zeros
    ticks = tab.page.locator("#parcoords .annotation-text").all_text_contents()
    assert "(inactive)" in ticks
    assert {"none", "extra_block"} <= set(ticks)
    # trial table: 9 trials, failed one with a blank value
    tab.page.wait_for_selector("#trials tbody tr")
    assert tab.page.inner_text("#table-count") == "9 trials"
    assert tab.page.locator("#trials tbody tr").count() == 9
    tab.page.click("#trials thead button[data-sort=value]")
    tab.page.wait_for_function("document.querySelector('#trials thead').textContent.includes('▼')")
    best = world.store.best_trial(world.search_id)
    assert best is not None
    assert tab.page.inner_text("#trials tbody tr:first-child td:nth-child(2)") == f"#{best.number}"
    # the log-axis toggle
    tab.page.click("#history-log")
    assert tab.page.evaluate("document.getElementById('history').layout.yaxis.type") == "log"
    tab.page.click("#history-log")
    # best configuration as YAML and JSON
    assert "layers" in tab.page.inner_text("#best-yaml")
    assert tab.page.inner_text("#best-json").lstrip().startswith("{")
    tab.shot("search")
    assert tab.serious_a11y_violations() == []
    # the failed trial's error text and the class label holding HTML ran nothing here either
    assert tab.page.evaluate("window.__xss") is None
    assert tab.page.locator("main img").count() == 0
    assert tab.errors == []


@pytest.mark.slow  # draws plotly plots: 5-15 s on a busy 2-core machine
def test_compare_two_trials_picked_in_the_table(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    tab.goto(f"/searches/{world.search_id}")
    tab.page.wait_for_selector("#trials tbody tr")
    boxes = tab.page.locator("#trials input.pick")
    boxes.nth(0).check()
    assert tab.page.is_disabled("#compare")
    boxes.nth(5).check()
    tab.page.click("#compare")
    tab.page.wait_for_url("**/compare?trials=*")
    tab.page.wait_for_selector(f"#compare-curves {PLOT}")
    assert tab.page.locator("#compared tbody tr").count() == 2
    differing = tab.page.locator("#config-diff tr.differs").count()
    assert differing >= 1
    tab.page.check("#only-diff")
    assert tab.page.locator("#config-diff tbody tr:visible").count() == differing
    tab.shot("compare")
    assert tab.errors == []


@pytest.mark.slow  # draws plotly plots: 5-25 s on a busy 2-core machine
def test_trial_page_shows_curves_confusion_matrix_and_provenance(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    tab.goto(f"/trials/{world.done_id}")
    tab.page.wait_for_selector(f"#epochs {PLOT}")
    tab.page.wait_for_selector(f"#cm-0 {PLOT}")
    assert {"cat", "dog", "bird"} <= set(tab.page.locator("#cm-0 .xtick text").all_text_contents())
    assert "val_accuracy" in tab.page.inner_text("#metrics")
    per_class = tab.page.inner_text("table.per-class")
    assert "dog" in per_class and "precision" in per_class
    assert "gpu" not in tab.page.inner_text("#provenance")
    assert "test-host" in tab.page.inner_text("#provenance")
    assert "reported_token" not in tab.page.content()
    tab.shot("trial")
    assert tab.errors == []


@pytest.mark.slow  # draws plotly plots: 5-25 s on a busy 2-core machine
def test_user_text_is_shown_as_text_never_run(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    tab.goto(f"/trials/{world.failed_id}")
    assert tab.page.inner_text("#trial-error") == XSS_ERROR
    assert tab.page.locator("main img").count() == 0
    tab.shot("trial-failed")
    tab.goto(f"/trials/{world.xss_trial_id}")
    tab.page.wait_for_selector(f"#cm-0 {PLOT}")
    assert XSS_LABEL in tab.page.inner_text("table.per-class")
    assert tab.page.evaluate("window.__xss") is None
    assert tab.page.locator("main img").count() == 0
    assert tab.errors == []


@pytest.mark.slow  # draws plotly plots: 5-25 s on a busy 2-core machine
def test_above_the_cap_the_parameter_plots_draw_a_sample_and_say_so(
    world: World, tab_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperhive.service.dashboard import data

    monkeypatch.setattr(data, "PLOT_BEST", 3)
    monkeypatch.setattr(data, "PLOT_RANDOM", 2)
    tab = tab_factory(world.alice)
    tab.goto(f"/searches/{world.search_id}")
    tab.page.wait_for_selector(f"#parcoords {PLOT}")
    tab.page.wait_for_selector(f"#slices {PLOT}")
    note = "the best 3 and a random 2 of the other 5 trials with a value (5 of 8)"
    assert note in tab.page.inner_text("#parcoords-note")
    assert note in tab.page.inner_text("#slices-note")
    # one line per sampled trial: 5 trials across the axes (each a run of points ended by a gap)
    lines = tab.page.evaluate(
        "document.getElementById('parcoords').data.filter(t => t.mode === 'lines')"
        ".reduce((n, t) => n + t.x.filter(x => x === null).length, 0)"
    )
    assert lines == 5
    assert tab.errors == []


def test_a_reported_trial_appears_without_reload_and_cancel_works(world: World, tab_factory: Any) -> None:
    tab = tab_factory(world.alice)
    tab.goto(f"/searches/{world.live_id}")
    tab.page.wait_for_selector(f"#history {PLOT}")
    assert tab.page.inner_text("#counts") == "2/20 finished"
    tab.page.evaluate("window.__same_page = true")
    search = world.store.get_search(world.live_id)
    trial = world.store.claim("w-dash", 60.0, search_id=search.id)
    assert trial is not None and trial.lease_token is not None
    world.store.heartbeat(trial.id, trial.lease_token, history=fake_result(trial.number).history[:2])
    # the running trial's curve shows up live
    tab.page.wait_for_function(
        "[...document.querySelectorAll('#curves .legendtext')].some(e => e.textContent === 'running')",
        timeout=10_000,
    )
    world.store.report(trial.id, trial.lease_token, fake_result(trial.number))
    tab.page.wait_for_function(
        "document.getElementById('counts').textContent === '3/20 finished'", timeout=10_000
    )
    tab.page.wait_for_function(
        "document.getElementById('table-count').textContent === '3 trials'", timeout=10_000
    )
    # trial #2 beats #0 and #1 (dashkit's made-up accuracies): the best configuration follows
    tab.page.wait_for_function("document.getElementById('best-number').textContent === '2'", timeout=10_000)
    best = world.store.best_trial(world.live_id)
    assert best is not None and best.number == 2 and best.config is not None
    assert json.loads(tab.page.inner_text("#best-json")) == best.config
    assert yaml.safe_load(tab.page.inner_text("#best-yaml")) == best.config
    assert "new best" in tab.page.inner_text("#best-updated")
    assert tab.page.evaluate("window.__same_page") is True
    tab.shot("search-live")
    # cancel from the same page
    tab.page.once("dialog", lambda d: d.accept())
    tab.page.click("#cancel")
    tab.page.wait_for_function(
        "document.getElementById('status').textContent === 'cancelled'", timeout=10_000
    )
    assert world.store.get_search(world.live_id).status == SearchStatus.CANCELLED
    assert tab.page.is_disabled("#cancel")
    assert tab.errors == []


def test_workers_page(world: World, tab_factory: Any) -> None:
    # alive now, however late in the module this test runs
    world.store.touch_worker("w-dash", status="idle", current_trial_id=None)
    tab = tab_factory(world.alice)
    tab.goto("/workers")
    text = tab.page.inner_text("#workers")
    assert "gpu-box-1" in text and "GPU:0" in text and "alive" in text
    tab.shot("workers")
    assert tab.errors == []


@pytest.mark.parametrize("path", ["/login", "/", "/workers", "trial"])
def test_pages_have_no_serious_accessibility_violations(world: World, tab_factory: Any, path: str) -> None:
    tab = tab_factory(None if path == "/login" else world.alice)
    tab.goto(f"/trials/{world.done_id}" if path == "trial" else path)
    if path == "trial":
        tab.page.wait_for_selector(f"#cm-0 {PLOT}")
    assert tab.serious_a11y_violations() == []
