"""Dashboard at scale: one search with 10,000 trials in a real SQLite store, served by uvicorn.

Prints, per data endpoint of the search page, the median and p95 request time seen by a client on the
same machine (loopback; close to server time), cold (first request, empty caches) and warm; and, in
headless chromium (Debian's, through Playwright), the time from navigation to the first plot and to
all plots of the search page. The trials are synthetic: 30 real claims and reports through the store
give the configurations, which are copied (with fresh values and 20-epoch histories) into an export
bundle that ``Store.import_search`` loads.

Run: ``.venv/bin/python benchmarks/dashboard.py`` (``--trials 2000`` for a quicker run). Numbers move by
2x on a shared machine: read medians.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import yaml
from hyperhive.search_spaces import load

from hyperhive.models import TrialResult
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

REPO = Path(__file__).resolve().parents[1]


def build_store(path: Path, n: int) -> tuple[SQLiteStore, str, str]:
    """A store with one search of ``n`` trials (the last 10 running), owned by ``bench``; its id, a token."""
    store = SQLiteStore(path)
    doc = yaml.safe_load((REPO / "search_spaces/examples/conditional-block.yaml").read_text())
    doc.update(name="bench", algorithm="random", max_trials=n + 10, seed=1)
    doc["objective"] = {"metric": "val_accuracy", "mode": "max"}
    seed_search = store.create_search(load(doc), owner="bench")
    for _ in range(30):
        t = store.claim("w", 60.0, search_id=seed_search.id)
        assert t is not None and t.lease_token is not None
        store.report(t.id, t.lease_token, TrialResult.done({"val_accuracy": 0.5}))
    bundle = store.export_search(seed_search.id)
    store.delete_search(seed_search.id)
    rng = np.random.default_rng(0)
    new_id = uuid.uuid4().hex[:16]
    bundle["search"]["id"] = new_id
    templates = bundle["trials"]
    trials = []
    for i in range(n):
        t = copy.deepcopy(templates[i % len(templates)])
        acc = float(rng.uniform(0.5, 0.95))
        t.update(
            id=uuid.uuid4().hex[:16],
            search_id=new_id,
            number=i,
            value=acc,
            loss=-acc,
            version=1,
            metrics={"val_accuracy": acc, "val_loss": 1 - acc},
            history=[{"epoch": e, "val_accuracy": acc * (0.5 + e / 40), "loss": 1 / e} for e in range(1, 21)],
        )
        if i >= n - 10:
            t.update(state="running", value=None, loss=None, finished_at=None)
        trials.append(t)
    bundle["trials"] = trials
    best = max((t for t in trials if t["state"] == "done"), key=lambda t: t["value"])
    bundle["search"].update(best_trial_id=best["id"], best_value=best["value"])
    bundle["search"]["status"] = "running"
    store.import_search(bundle, owner="bench")  # the last 10 arrive queued (imports requeue running trials)
    _, token = store.create_token("bench")
    return store, new_id, token


def timed(client: httpx.Client, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def row(name: str, ms: list[float], size: int | None = None) -> None:
    p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
    extra = f"{size / 1e6:8.2f} MB" if size is not None else ""
    print(f"{name:44s} {statistics.median(ms):9.1f} {p95:9.1f} {len(ms):4d} {extra}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--no-browser", action="store_true", help="HTTP timings only")
    ap.add_argument("--no-optuna", action="store_true", help="skip optuna-dashboard")
    args = ap.parse_args()
    browser = not args.no_browser and shutil.which("chromium") is not None
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        store, sid, token = build_store(Path(d) / "bench.db", args.trials)
        print(f"built a search of {args.trials} trials in {time.perf_counter() - t0:.1f}s")
        from hyperhive.service.app import create_app

        settings = Settings(store=f"sqlite:///{d}/bench.db", home=Path(d) / "home")  # type: ignore[call-arg]
        server = uvicorn.Server(uvicorn.Config(create_app(settings, store), port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        cookies = {"hyperhive_session": token}
        ours: dict[str, Any] = {}
        print(f"\n{'endpoint (client-side ms on loopback)':44s} {'median':>9s} {'p95':>9s} {'n':>4s}")
        with httpx.Client(base_url=url, cookies=cookies, timeout=120) as c:
            api = f"/dashboard-api/searches/{sid}"
            cold = timed(c, f"{api}/rows", 1)
            full = c.get(f"{api}/rows")
            ours.update(cold=cold, size=len(full.content), warm=timed(c, f"{api}/rows", args.repeat))
            row("rows, all (cold cache)", cold, len(full.content))
            row("rows, all (warm cache)", ours["warm"], len(full.content))
            data = full.json()
            row(
                "rows, changes since (nothing new)",
                timed(c, f"{api}/rows?epoch={data['epoch']}&since={data['revision']}", args.repeat),
            )
            row("table page 1 by number", timed(c, f"{api}/table?page=1&size=25", args.repeat))
            row(
                "table page 200 by value, desc",
                timed(c, f"{api}/table?page=200&size=25&sort=value&desc=true", args.repeat),
            )
            curve_ids = ",".join(r["id"] for r in data["rows"][-200:])
            row("curves of 200 trials (cold)", timed(c, f"{api}/curves?ids={curve_ids}", 1))
            row("curves of 200 trials (cached)", timed(c, f"{api}/curves?ids={curve_ids}", args.repeat))
            row("parameter-plot sample", timed(c, f"{api}/sample", args.repeat))
            row("best configuration", timed(c, f"{api}/best", args.repeat))
            row("importance (cold: fits the forests)", timed(c, f"{api}/importance", 1))
            row("importance (cached)", timed(c, f"{api}/importance", args.repeat))
            row("search page HTML", timed(c, f"/searches/{sid}", args.repeat))
        if browser:
            print("\nHyperhive's search page in headless chromium:")
            ours["page"] = page_times(f"{url}/searches/{sid}", (url, token), "#history .main-svg", ALL_PLOTS)
        server.should_exit = True
        thread.join(10)
        theirs = {} if args.no_optuna else optuna_dashboard_times(store, sid, args.repeat, browser)
        store.close()
    comparison(args.trials, ours, theirs)


def comparison(n: int, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """One table: Hyperhive's dashboard beside optuna-dashboard on the same trials."""

    def ms(v: list[float] | None) -> str:
        return "-" if not v else f"{statistics.median(v):.0f}"

    def page(d: dict[str, Any], i: int) -> str:
        visits = d.get("page") or []
        if len(visits) <= i:
            return "-"
        return f">{VISIT_TIMEOUT_MS}" if math.isinf(visits[i]) else f"{visits[i]:.0f}"

    print(f"\nSide by side, {n} trials (ms; data: client-side on loopback; page: navigation to first plot)")
    print(f"{'':44s} {'Hyperhive':>12s} {'optuna-dashboard':>17s}")
    lines = [
        ("study/search data, first request (cold)", ms(ours.get("cold")), ms(theirs.get("cold"))),
        ("study/search data, again (median)", ms(ours.get("warm")), ms(theirs.get("warm"))),
        (
            "study/search data, size (MB)",
            f"{ours.get('size', 0) / 1e6:.2f}",
            f"{theirs.get('size', 0) / 1e6:.2f}" if theirs else "-",
        ),
        ("page: first plot, first visit", page(ours, 0), page(theirs, 0)),
        ("page: first plot, second visit", page(ours, 1), page(theirs, 1)),
        ("page: first plot, third visit", page(ours, 2), page(theirs, 2)),
    ]
    for name, a, b in lines:
        print(f"{name:44s} {a:>12s} {b:>17s}")


VISIT_TIMEOUT_MS = 120_000
ALL_PLOTS = ("#curves", "#parcoords", "#slices", "#importance")
FIRST_PLOT_PROBE = """
new MutationObserver((_, obs) => {
  const drawn = [...document.querySelectorAll('.js-plotly-plot')].some(
    (d) => d.querySelector('.main-svg') && (d.data || []).some((t) => t.x && t.x.length > 1));
  if (drawn && window.__firstPlot === undefined) { window.__firstPlot = performance.now(); obs.disconnect(); }
}).observe(document, { childList: true, subtree: true });
"""


def page_times(
    url: str, session: tuple[str, str] | None, first: str, rest: tuple[str, ...] = ()
) -> list[float]:
    """Three visits of ``url`` in headless chromium (the first with an empty cache): the time from
    navigation to the first plot holding data (a plotly plot with a trace of 2+ points, seen by a
    MutationObserver in the page) and, seen from outside, to every ``rest`` plot; the first-plot times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    out = []
    print(f"{'  visit (ms after navigation)':44s} {'first plot':>10s} {'all plots':>10s}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader"]
        )
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        if session is not None:
            ctx.add_cookies([{"name": "hyperhive_session", "value": session[1], "url": session[0]}])
        # the moment (ms after navigation started) a plot holding data is in the DOM: recorded by the
        # page itself, since a check from outside waits until the page is idle
        ctx.add_init_script(FIRST_PLOT_PROBE)
        page = ctx.new_page()
        for label in ("first visit", "second visit (scripts cached)", "third visit"):
            t0 = time.perf_counter()
            page.goto(url, wait_until="commit")
            try:
                page.wait_for_selector(first, timeout=VISIT_TIMEOUT_MS)
                page.wait_for_function("window.__firstPlot !== undefined", timeout=VISIT_TIMEOUT_MS)
            except PlaywrightTimeout:
                print(f"  {label:42s} no plot with data within {VISIT_TIMEOUT_MS / 1000:.0f} s")
                out.append(math.inf)
                continue
            out.append(page.evaluate("window.__firstPlot"))
            for sel in rest:
                page.wait_for_selector(f"{sel} .main-svg", timeout=180_000)
            total = f"{(time.perf_counter() - t0) * 1000:10.0f}" if rest else f"{'':10s}"
            print(f"  {label:42s} {out[-1]:10.0f} {total}")
            if rest:
                marks = page.evaluate(
                    "performance.getEntriesByType('mark').filter(m => m.name.startsWith('hh:'))"
                    ".map(m => m.name.slice(3) + ' ' + Math.round(m.startTime)).join(', ')"
                )
                print(f"    page marks: {marks}")
        b.close()
    return out


# ---------------------------------------------------------------------------------------- optuna-dashboard
def optuna_study(store: SQLiteStore, sid: str) -> tuple[Any, int]:
    """The same trials in an in-memory Optuna study (the fastest storage optuna-dashboard reads):
    numeric parameters as float distributions over their observed range, choices categorical,
    inactive parameters absent, the 20-epoch curve as intermediate values. Its storage and study id."""
    import optuna
    from hyperhive.service.dashboard.views import param_meta
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState as OptunaState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = store.get_search(sid)
    rows, _ = store.trial_rows(sid)
    dists: dict[str, Any] = {}
    for p in param_meta(search):
        label = p["label"]
        if p["options"]:
            dists[label] = CategoricalDistribution(list(range(len(p["options"]))))
            continue
        seen = [r.vals[label][0] for r in rows if r.vals and r.vals.get(label)]
        lo, hi = float(min(seen)), float(max(seen))
        dists[label] = FloatDistribution(lo, max(hi, lo + 1e-9), log=bool(p["log"]) and lo > 0)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="bench", direction="maximize")
    trials = []
    for r in sorted(rows, key=lambda r: r.number):
        active = {k: v[0] for k, v in (r.vals or {}).items() if v and k in dists}
        params = {
            k: (int(v) if isinstance(dists[k], CategoricalDistribution) else float(v))
            for k, v in active.items()
        }
        done = r.value is not None
        curve = {e: r.value * (0.5 + e / 40) for e in range(1, 21)} if done else {}
        trials.append(
            optuna.trial.create_trial(
                state=OptunaState.COMPLETE if done else OptunaState.RUNNING,
                value=r.value if done else None,
                params=params,
                distributions={k: dists[k] for k in params},
                intermediate_values=curve,
            )
        )
    study.add_trials(trials)
    return storage, study._study_id


def serve_wsgi(app: Any) -> tuple[str, Any]:
    """``app`` on 127.0.0.1 in a thread (a threading wsgiref server); its URL and the server."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Threading(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    httpd = make_server("127.0.0.1", 0, app, server_class=Threading, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}", httpd


def optuna_dashboard_times(store: SQLiteStore, sid: str, repeat: int, browser: bool) -> dict[str, Any]:
    """optuna-dashboard over the same trials: its study-detail API (cold and warm) and its study page's
    time to the first plot."""
    try:
        from optuna_dashboard import wsgi
    except ImportError:
        print("\n(optuna-dashboard is not installed: pip install optuna-dashboard)")
        return {}
    t0 = time.perf_counter()
    storage, study_id = optuna_study(store, sid)
    print(
        f"\noptuna-dashboard {version('optuna-dashboard')}: the same trials in an in-memory Optuna study "
        f"({time.perf_counter() - t0:.1f}s to build)"
    )
    url, httpd = serve_wsgi(wsgi(storage))
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=300) as c:
        api = f"/api/studies/{study_id}?after=0"
        out["cold"] = timed(c, api, 1)
        r = c.get(api)
        out["size"] = len(r.content)
        out["warm"] = timed(c, api, repeat)
    if browser:
        out["page"] = page_times(f"{url}/dashboard/studies/{study_id}", None, ".js-plotly-plot .main-svg")
    httpd.shutdown()
    return out


if __name__ == "__main__":
    main()
