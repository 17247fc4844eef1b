"""The dashboard over HTTP without a browser: sign-in, sessions, the CSRF guard, ownership, static files
and the changes-since feed. The real app under TestClient over a real SQLite store."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashkit import XSS_ERROR, create_search, fake_result, run_fake_trials

from hyperhive.models import SearchStatus, TrialResult
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore
from hyperhive.store.base import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "hh.db")
    yield s
    s.close()


def app_client(tmp_path: Path, store: Store, **kw: object) -> TestClient:
    from hyperhive.service.app import create_app

    settings = Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home", **kw)
    return TestClient(create_app(settings, store), raise_server_exceptions=False, base_url="http://127.0.0.1")


@pytest.fixture
def client(tmp_path: Path, store: SQLiteStore) -> TestClient:
    return app_client(tmp_path, store)


def sign_in(client: TestClient, token: str) -> None:
    r = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def rows_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The trials of a ``/rows`` answer (sent as columns) as one dict each."""
    cols = data["rows"]
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def importance_of(client: TestClient, search_id: str) -> dict[str, Any]:
    """The importance answer once the background fit is done."""
    deadline = time.monotonic() + 60
    while True:
        data: dict[str, Any] = client.get(f"/dashboard-api/searches/{search_id}/importance").json()
        if not data["pending"] or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def csrf_of(client: TestClient, search_id: str) -> str:
    import json
    import re

    html = client.get(f"/searches/{search_id}").text
    m = re.search(r'<script type="application/json" id="csrf">(.*?)</script>', html)
    assert m is not None
    return str(json.loads(m.group(1)))


def test_pages_redirect_to_sign_in_and_data_needs_a_session(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 3)
    for path in ("/", f"/searches/{search.id}", "/workers", "/trials/x"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
    r = client.get(f"/searches/{search.id}?x=1", follow_redirects=False)
    assert r.headers["location"] == f"/login?next=/searches/{search.id}%3Fx%3D1"
    assert client.get(f"/dashboard-api/searches/{search.id}/rows").status_code == 401
    # the API's bearer tokens do not open the dashboard's data, and the cookie does not open the API
    r = client.get(f"/dashboard-api/searches/{search.id}/rows", headers={"Authorization": f"Bearer {alice}"})
    assert r.status_code == 401
    sign_in(client, alice)
    assert client.get("/api/searches").status_code == 401


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(
    client: TestClient, store: SQLiteStore
) -> None:
    _, alice = store.create_token("alice")
    r = client.post("/login", data={"token": "hh_wrong"}, follow_redirects=False)
    assert r.status_code == 200 and "Unknown or revoked token" in r.text
    assert "set-cookie" not in r.headers
    r = client.post("/login", data={"token": alice, "next": "/workers"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/workers"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert client.get("/", follow_redirects=False).status_code == 200
    client.get("/logout", follow_redirects=False)
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_redirects_to_another_site(client: TestClient, store: SQLiteStore, target: str) -> None:
    _, alice = store.create_token("alice")
    r = client.post("/login", data={"token": alice, "next": target}, follow_redirects=False)
    assert r.headers["location"] == "/"


def test_a_revoked_token_ends_its_sessions(client: TestClient, store: SQLiteStore) -> None:
    info, alice = store.create_token("alice")
    sign_in(client, alice)
    assert client.get("/", follow_redirects=False).status_code == 200
    store.revoke_token(info.id)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_cross_site_cancel_is_refused(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 3)
    sign_in(client, alice)
    url = f"/dashboard-api/searches/{search.id}/cancel"
    token = csrf_of(client, search.id)
    assert client.post(url).status_code == 403  # no CSRF token (a cross-site form)
    assert client.post(url, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    evil = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
    assert client.post(url, headers=evil).status_code == 403
    assert store.get_search(search.id).status == SearchStatus.PENDING
    r = client.post(url, headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert store.get_search(search.id).status == SearchStatus.CANCELLED


def test_another_users_search_is_hidden_and_cannot_be_changed(client: TestClient, store: SQLiteStore) -> None:
    _, bob = store.create_token("bob")
    store.create_token("alice")
    search = create_search(store, "alice", "alices", 3)
    (trial_id,) = run_fake_trials(store, search, 1)
    sign_in(client, bob)
    assert "alices" not in client.get("/").text
    for path in (f"/searches/{search.id}", f"/trials/{trial_id}"):
        r = client.get(path)
        assert r.status_code == 404 and "alices" not in r.text
    assert client.get(f"/dashboard-api/searches/{search.id}/table").status_code == 404
    own = create_search(store, "bob", "bobs", 3)
    token = csrf_of(client, own.id)
    r = client.post(f"/dashboard-api/searches/{search.id}/cancel", headers={"X-CSRF-Token": token})
    assert r.status_code == 404
    assert store.get_search(search.id).status == SearchStatus.RUNNING


def test_extend_keeps_the_apis_rules(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 3)
    sign_in(client, alice)
    headers = {"X-CSRF-Token": csrf_of(client, search.id)}
    url = f"/dashboard-api/searches/{search.id}/extend"
    r = client.post(url, json={"n": 4}, headers=headers)
    assert r.status_code == 200 and r.json()["max_trials"] == 7
    assert client.post(url, json={"n": 0}, headers=headers).status_code == 422
    assert client.post(url, json={"n": 100_000}, headers=headers).status_code == 422
    assert store.get_search(search.id).max_trials == 7


def test_no_auth_shows_pages_without_signing_in(tmp_path: Path, store: SQLiteStore) -> None:
    search = create_search(store, "alice", "s1", 3)
    client = app_client(tmp_path, store, no_auth=True)
    r = client.get(f"/searches/{search.id}", follow_redirects=False)
    assert r.status_code == 200 and "s1" in r.text


def test_changes_since_sends_only_what_changed(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 5)
    run_fake_trials(store, search, 2)
    sign_in(client, alice)
    url = f"/dashboard-api/searches/{search.id}/rows"
    answer = client.get(url)
    assert answer.headers["server-timing"].startswith("app;dur="), "the server's own time, for benchmarks"
    first = answer.json()
    assert first["full"] and len(rows_of(first)) == 2 and first["params"]
    assert set(first["rows"]) == {"id", "n", "s", "v", "ver"}, "no parameter values, curves or epochs"
    same = client.get(url, params={"epoch": first["epoch"], "since": first["revision"]}).json()
    assert not same["full"] and rows_of(same) == []
    trial = store.claim("w", 60.0, search_id=search.id)
    assert trial is not None and trial.lease_token is not None
    store.heartbeat(trial.id, trial.lease_token, history=fake_result(trial.number).history[:1])
    moved = client.get(url, params={"epoch": first["epoch"], "since": first["revision"]}).json()
    assert [(r["id"], r["s"], r["ver"]) for r in rows_of(moved)] == [
        (trial.id, "running", store.get_trial(trial.id).version)
    ]
    store.report(trial.id, trial.lease_token, fake_result(trial.number))
    done = client.get(url, params={"epoch": first["epoch"], "since": moved["revision"]}).json()
    assert [(r["id"], r["s"], r["v"]) for r in rows_of(done)] == [
        (trial.id, "done", store.get_trial(trial.id).value)
    ]
    # a stale epoch (a restarted server) gets everything again
    again = client.get(url, params={"epoch": "old", "since": 99}).json()
    assert again["full"] and len(rows_of(again)) == 3


def test_inactive_parameters_are_null_not_zero(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 12)
    run_fake_trials(store, search, 12)
    sign_in(client, alice)
    params = client.get(f"/dashboard-api/searches/{search.id}/rows").json()["params"]
    data = client.get(f"/dashboard-api/searches/{search.id}/sample").json()
    assert len(data["rows"]) == 12
    labels = [p["label"] for p in params]
    block, filters = labels.index("model.layers[1]"), labels.index("model.layers[1].extra_block[0].filters")
    assert params[block]["options"] == ["none", "extra_block"]
    assert params[labels.index("model.layers[0].filters")]["options"] == ["16", "32"]
    for row in data["rows"]:
        assert (row["p"][filters] is None) == (row["p"][block] == 0)
    assert {row["p"][block] for row in data["rows"]} == {0, 1}


def test_user_text_is_escaped_in_the_html(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 3)
    trial = store.claim("w", 60.0, search_id=search.id)
    assert trial is not None and trial.lease_token is not None
    store.report(trial.id, trial.lease_token, TrialResult.failed(XSS_ERROR))
    sign_in(client, alice)
    html = client.get(f"/trials/{trial.id}").text
    assert XSS_ERROR not in html and "&lt;img src=x onerror=" in html


def test_a_trial_without_a_value_says_why(client: TestClient, store: SQLiteStore) -> None:
    import re

    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 3)
    sign_in(client, alice)
    failed = store.claim("w", 60.0, search_id=search.id)
    assert failed is not None and failed.lease_token is not None
    store.report(failed.id, failed.lease_token, TrialResult.failed("CUDA out of memory"))
    running = store.claim("w", 60.0, search_id=search.id)
    assert running is not None

    def shown(trial_id: str) -> str:
        html = client.get(f"/trials/{trial_id}").text
        (cell,) = re.findall(r'<td id="objective-value">(.*?)</td>', html)
        return re.sub(r"<[^>]+>", "", cell)

    assert shown(failed.id) == "none: the trial failed (see the error above)"
    assert shown(running.id) == "not yet: the trial is running"


def test_pages_carry_a_content_security_policy(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    sign_in(client, alice)
    csp = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_plotly_is_served_offline_with_long_caching(client: TestClient, store: SQLiteStore) -> None:
    import re

    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 2)
    sign_in(client, alice)
    (url,) = re.findall(
        r'<script src="(/dashboard-static/plotly/[^"]+)"', client.get(f"/searches/{search.id}").text
    )
    r = client.get(url)
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert r.headers["content-type"].startswith("text/javascript") and len(r.content) > 1_000_000
    hint = b"//# allFunctionsCalledOnLoad\n"  # Chromium's compile hint, then the file as vendored
    assert r.content.startswith(hint + b"/**\n* plotly.js"), "the vendored bundle, its licence header first"
    assert client.get("/dashboard-static/plotly/plotly-0.0.1.min.js").status_code == 404
    for bad in ("x/..%2F..%2Fapp.py", "x/__init__.py", "x/nothing.js"):
        assert client.get(f"/dashboard-static/{bad}").status_code == 404
    assert client.get("/dashboard-static/x/dashboard.css").status_code == 200


def test_the_sign_in_link_fills_the_form_but_signs_in_only_on_submit(
    client: TestClient, store: SQLiteStore
) -> None:
    _, alice = store.create_token("alice")
    r = client.get(f"/login?token={alice}", follow_redirects=False)
    assert r.status_code == 200 and f'value="{alice}"' in r.text
    assert "set-cookie" not in r.headers
    assert client.get("/", follow_redirects=False).status_code == 303


def test_importance_ranks_the_parameter_that_drives_the_objective(
    client: TestClient, store: SQLiteStore
) -> None:
    from hyperhive.search_spaces import load

    doc = {
        "name": "imp",
        "algorithm": "random",
        "max_trials": 40,
        "seed": 1,
        "objective": {"function": "hyperhive.demo_objectives:branin"},
        "params": {"x": {"uniform": [-5, 10]}, "y": {"uniform": [0, 15]}, "z": {"choice": ["a", "b"]}},
    }
    _, alice = store.create_token("alice")
    search = store.create_search(load(doc), owner="alice")
    for _ in range(40):
        trial = store.claim("w", 60.0, search_id=search.id)
        assert trial is not None and trial.lease_token is not None and trial.config is not None
        x = trial.config["params"]["x"]
        store.report(trial.id, trial.lease_token, TrialResult.done({"loss": 10 * x}))
    sign_in(client, alice)
    data = importance_of(client, search.id)
    assert data["trials"] == 40 and not data["pending"]
    ranked = data["params"]
    assert ranked[0]["label"] == "params.x" and ranked[0]["importance"] > 0.8
    assert {p["label"] for p in ranked} == {"params.x", "params.y", "params.z"}
    assert all(p["trials"] == 40 for p in ranked)
    # cached: the same answer without refitting
    assert client.get(f"/dashboard-api/searches/{search.id}/importance").json() == data


def test_importance_needs_enough_trials(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "few", 5)
    run_fake_trials(store, search, 2)
    sign_in(client, alice)
    data = importance_of(client, search.id)
    assert data["params"] and all(p["importance"] is None for p in data["params"])


def test_compare_takes_two_to_five_visible_trials(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "mine", 6)
    ids = run_fake_trials(store, search, 6)
    other = create_search(store, "bob", "theirs", 2)
    (theirs,) = run_fake_trials(store, other, 1)
    sign_in(client, alice)
    r = client.get(f"/compare?trials={ids[0]},{ids[1]}")
    assert r.status_code == 200 and r.text.count('class="differs"') >= 1
    assert client.get(f"/compare?trials={ids[0]}").status_code == 400
    assert client.get(f"/compare?trials={ids[0]},{ids[0]}").status_code == 400  # the same trial twice
    assert client.get("/compare?trials=" + ",".join(ids)).status_code == 400
    r = client.get(f"/compare?trials={ids[0]},{theirs}")
    assert r.status_code == 404 and "theirs" not in r.text


def test_curves_are_read_on_demand_and_again_when_the_trial_changes(
    client: TestClient, store: SQLiteStore
) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 9)
    done_ids = run_fake_trials(store, search, 3)
    other = create_search(store, "alice", "s2", 2)
    (elsewhere,) = run_fake_trials(store, other, 1)
    running = store.claim("w", 60.0, search_id=search.id)
    assert running is not None and running.lease_token is not None
    store.heartbeat(running.id, running.lease_token, history=fake_result(1).history[:2])
    sign_in(client, alice)
    url = f"/dashboard-api/searches/{search.id}/curves"
    got = client.get(url, params={"ids": ",".join([*done_ids, running.id, elsewhere, "nope"])}).json()[
        "curves"
    ]
    assert set(got) == {*done_ids, running.id}, "ids of another search or of nothing are left out"
    t0 = store.get_trial(done_ids[0])
    assert got[done_ids[0]]["c"] == [[h["epoch"], h["val_accuracy"]] for h in t0.history]
    assert len(got[running.id]["c"]) == 2
    store.report(running.id, running.lease_token, fake_result(0, epochs=6))
    again = client.get(url, params={"ids": running.id}).json()["curves"][running.id]
    assert len(again["c"]) == 6 and again["ver"] == store.get_trial(running.id).version
    r = client.get(url, params={"ids": ",".join(f"id{i}" for i in range(201))})
    assert r.status_code == 422 and "at most 200" in r.json()["detail"]


def test_the_parameter_plots_get_the_best_and_a_random_sample_above_the_cap(
    client: TestClient, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperhive.service.dashboard import data

    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 12)
    run_fake_trials(store, search, 12)
    sign_in(client, alice)
    url = f"/dashboard-api/searches/{search.id}/sample"
    whole = client.get(url).json()
    assert not whole["sampled"] and len(whole["rows"]) == whole["scored"] == 12
    monkeypatch.setattr(data, "PLOT_BEST", 3)
    monkeypatch.setattr(data, "PLOT_RANDOM", 4)
    cut = client.get(url).json()
    assert cut["sampled"] and cut["scored"] == 12 and cut["best"] == 3 and len(cut["rows"]) == 7
    values = sorted((r["v"] for r in whole["rows"]), reverse=True)  # mode max
    picked = sorted((r["v"] for r in cut["rows"]), reverse=True)
    assert picked[:3] == values[:3], "the best trials are always drawn"
    assert [r["n"] for r in cut["rows"]] == sorted(r["n"] for r in cut["rows"])
    assert len({r["id"] for r in cut["rows"]}) == 7
    assert client.get(url).json() == cut, "the same trials give the same sample"


def test_the_best_configuration_follows_the_best_trial(client: TestClient, store: SQLiteStore) -> None:
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 12)
    sign_in(client, alice)
    url = f"/dashboard-api/searches/{search.id}/best"
    assert client.get(url).json()["id"] is None
    run_fake_trials(store, search, 4)
    best = store.best_trial(search.id)
    assert best is not None and best.config is not None
    got = client.get(url).json()
    assert (got["id"], got["number"]) == (best.id, best.number)
    assert json.loads(got["json"]) == best.config and yaml.safe_load(got["yaml"]) == best.config


def test_changes_since_on_mongodb(tmp_path: Path) -> None:
    """MongoDB has no change feed: the rows cache goes through the version comparison instead."""
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    store = MongoStore("mongodb://localhost/dash", database="dash", client=mongomock.MongoClient())
    try:
        _, alice = store.create_token("alice")
        search = create_search(store, "alice", "s1", 5)
        run_fake_trials(store, search, 2)
        client = app_client(tmp_path, store)
        sign_in(client, alice)
        url = f"/dashboard-api/searches/{search.id}/rows"
        first = client.get(url).json()
        assert first["full"] and len(rows_of(first)) == 2
        (new,) = run_fake_trials(store, search, 1)
        moved = client.get(url, params={"epoch": first["epoch"], "since": first["revision"]}).json()
        assert [r["id"] for r in rows_of(moved)] == [new]
        sample = client.get(f"/dashboard-api/searches/{search.id}/sample").json()
        assert len(sample["rows"]) == 3 and all(len(r["p"]) == len(first["params"]) for r in sample["rows"])
        table = client.get(f"/dashboard-api/searches/{search.id}/table", params={"sort": "value"}).json()
        assert table["total"] == 3 and [r["p"] for r in table["rows"]] == [
            r["p"] for r in sorted(sample["rows"], key=lambda r: r["v"])
        ]
        assert client.get(f"/searches/{search.id}").status_code == 200
    finally:
        store.close()


def test_the_caches_stay_bounded(
    client: TestClient, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Curves and parameter values are kept per search up to a limit, and the row cache drops the
    least recently viewed searches beyond a number of trials: viewing many trials cannot grow memory
    without end."""
    from hyperhive.service.dashboard import views

    monkeypatch.setattr(views, "MAX_CACHED_CURVES", 2)
    monkeypatch.setattr(views, "MAX_CACHED_PARAMS", 3)
    _, alice = store.create_token("alice")
    search = create_search(store, "alice", "s1", 5)
    ids = run_fake_trials(store, search, 5)
    sign_in(client, alice)
    api = f"/dashboard-api/searches/{search.id}"
    curves = client.get(f"{api}/curves", params={"ids": ",".join(ids)}).json()["curves"]
    assert set(curves) == set(ids) and all(len(c["c"]) == 4 for c in curves.values())
    assert len(client.get(f"{api}/table", params={"size": 5}).json()["rows"]) == 5
    entry = client.app.state.dashboard_rows._items[search.id]  # type: ignore[attr-defined]
    assert len(entry.curves) == 2 and len(entry.values) == 3

    cache = views.RowCache(size=16, max_trials=4)
    other = create_search(store, "alice", "s2", 3)
    run_fake_trials(store, other, 3)
    cache.rows(store, store.get_search(search.id))
    cache.rows(store, store.get_search(other.id))
    assert list(cache._items) == [other.id], "5 + 3 trials are over the limit: the older search goes"
