"""Dashboard at scale: one search with 10,000 trials in a real SQLite store, beside optuna-dashboard.

Ours: each round starts ``create_app`` under uvicorn in a FRESH PROCESS (empty caches, nothing
imported yet; the operating system's file cache is warm), asks each data endpoint of the search page
once in the order the page does (cold), then again ``--repeat`` times (warm); times are seen by a
client on the same machine (loopback: server time plus a few ms). Then a fresh server and a fresh
headless chromium (Debian's, through Playwright; empty browser cache) visit the search page three
times: the time from navigation to the first plot holding data, and to every plot. Medians over
``--rounds`` rounds.

optuna-dashboard: the same trials in an in-memory Optuna study (the fastest storage it reads), its
study-detail API (``/api/studies/{id}``) cold and warm, and its study page's time to the first plot
in a fresh chromium, waiting at most ``--optuna-wait`` seconds per visit.

The trials are synthetic: 30 real claims and reports through the store give the configurations,
which are copied (with fresh values and 20-epoch histories) into an export bundle that
``Store.import_search`` loads.

Run: ``.venv/bin/python benchmarks/dashboard.py`` (``--trials 2000`` for a quicker run). Numbers move by
2x on a shared machine: read medians.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from _stats import p95

from hyperhive.models import TrialResult
from hyperhive.search_spaces import load
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


SERVE = """
import sys, uvicorn
from pathlib import Path
from hyperhive.service.app import create_app
from hyperhive.settings import Settings
db, home, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings(store=f"sqlite:///{db}", home=Path(home))
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
"""


class FreshServer:
    """Hyperhive's app over the store file in a new process (nothing cached, nothing imported)."""

    def __init__(self, db: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(db), str(db.parent / "home"), str(port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def __enter__(self) -> FreshServer:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def app_ms(r: httpx.Response) -> float:
    """The server's own time for the answer (its ``Server-Timing: app;dur=``), NaN without one."""
    for part in r.headers.get("server-timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "app" and dur:
            return float(dur)
    return math.nan


def record(
    out: dict[str, dict[str, list[float]]], label: str, kind: str, c: httpx.Client, url: str
) -> httpx.Response:
    """One request: its client-side time under ``kind`` and the server's under ``kind + " app"``."""
    t0 = time.perf_counter()
    r = c.get(url)
    entry = out.setdefault(label, {})
    entry.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    entry.setdefault(f"{kind} app", []).append(app_ms(r))
    r.raise_for_status()
    return r


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


ENDPOINTS = [  # (label, path under /dashboard-api/searches/{id}) in the order the page asks
    ("rows: every trial (the history's data)", "/rows?since=0"),
    ("table: page 1 by number", "/table?page=1&size=25&sort=number&desc=false"),
    ("sample: the parameter plots' 500 rows", "/sample"),
    ("curves: 200 trials", "/curves?ids={curve_ids}"),
    ("importance (answers at once; fit in background)", "/importance"),
    ("best configuration", "/best"),
    ("table: page 200 by value, desc", "/table?page=200&size=25&sort=value&desc=true"),
]


def our_http_round(
    db: Path, sid: str, token: str, repeat: int, out: dict[str, dict[str, list[float]]]
) -> None:
    """One fresh server: each endpoint once cold (in page order), then ``repeat`` times warm."""
    with (
        FreshServer(db) as server,
        httpx.Client(base_url=server.url, cookies={"hyperhive_session": token}, timeout=120) as c,
    ):
        api = f"/dashboard-api/searches/{sid}"
        t0 = time.perf_counter()
        c.get(f"/searches/{sid}").raise_for_status()
        out.setdefault("search page HTML", {}).setdefault("cold", []).append(
            (time.perf_counter() - t0) * 1000
        )
        curve_ids = ""
        for label, path in ENDPOINTS:
            url = api + path.format(curve_ids=curve_ids)
            r = record(out, label, "cold", c, url)
            if path.startswith("/rows"):
                cols = r.json()["rows"]
                curve_ids = ",".join(cols["id"][-200:])
                out[label]["size"] = [len(r.content)]
            if path == "/importance":  # the background fit: until the answer is no longer pending
                t0 = time.perf_counter()
                while r.json()["pending"]:
                    time.sleep(0.05)
                    r = c.get(url)
                out.setdefault("importance fit (background, until ready)", {}).setdefault("cold", []).append(
                    (time.perf_counter() - t0) * 1000
                )
        for label, path in ENDPOINTS:
            for _ in range(repeat):
                record(out, label, "warm", c, api + path.format(curve_ids=curve_ids))
        out["search page HTML"].setdefault("warm", []).extend(timed(c, f"/searches/{sid}", repeat))
        rows = c.get(f"{api}/rows?since=0").json()
        changes = f"{api}/rows?epoch={rows['epoch']}&since={rows['revision']}"
        for _ in range(repeat):
            record(out, "rows: changes since (nothing new)", "warm", c, changes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10, help="warm requests per endpoint and round")
    ap.add_argument("--rounds", type=int, default=3, help="fresh servers (and browsers) per measurement")
    ap.add_argument(
        "--optuna-wait", type=float, default=60, help="seconds to wait for optuna-dashboard's plot"
    )
    ap.add_argument("--no-browser", action="store_true", help="HTTP timings only")
    ap.add_argument("--no-optuna", action="store_true", help="skip optuna-dashboard")
    args = ap.parse_args()
    browser = not args.no_browser and shutil.which("chromium") is not None
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "bench.db"
        t0 = time.perf_counter()
        store, sid, token = build_store(db, args.trials)
        print(f"built a search of {args.trials} trials in {time.perf_counter() - t0:.1f}s")
        http: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.rounds):
            our_http_round(db, sid, token, args.repeat, http)
        print(f"\nHyperhive, {args.rounds} fresh server processes; medians in ms: server time (from its")
        print("Server-Timing header) and, in brackets, as seen by a client on loopback; warm p95: the")
        print("95th percentile of the warm requests as seen by the client")
        print(f"{'endpoint':50s} {'cold':>14s} {'warm':>14s} {'warm p95':>9s} {'MB':>6s}")

        def cell(m: dict[str, list[float]], kind: str) -> str:
            if not m.get(kind):
                return f"{'':>14s}"
            app = median(m.get(f"{kind} app", []))
            client = median(m[kind])
            return f"{client:14.0f}" if math.isnan(app) else f"{app:6.0f} ({client:5.0f})"

        for label, m in http.items():
            size = f"{m['size'][0] / 1e6:6.2f}" if "size" in m else ""
            tail = f"{p95(m['warm']):9.0f}" if m.get("warm") else f"{'':>9s}"
            print(f"{label:50s} {cell(m, 'cold')} {cell(m, 'warm')} {tail} {size}")
        ours: dict[str, Any] = {"http": http, "visits": []}
        if browser:
            print("\nHyperhive's search page in headless chromium (fresh server and browser each round):")
            for _ in range(args.rounds):
                with FreshServer(db) as server:
                    ours["visits"].append(
                        visits_in_child(
                            f"{server.url}/searches/{sid}", (server.url, token), ALL_PLOTS, VISIT_TIMEOUT_S, 3
                        )
                    )
        store.close()
        theirs = (
            {} if args.no_optuna else optuna_dashboard_times(db, sid, args.repeat, browser, args.optuna_wait)
        )
    comparison(args.trials, ours, theirs)


def comparison(n: int, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """One table: Hyperhive's dashboard beside optuna-dashboard on the same trials (medians)."""
    rows = ours["http"].get("rows: every trial (the history's data)", {})

    def ms(v: list[float] | None) -> str:
        return "-" if not v else f"{median(v):.0f}"

    def visit(d: dict[str, Any], i: int, wait: float) -> str:
        times = [v[i] for v in d.get("visits", []) if len(v) > i]
        if not times:
            return "-"
        drawn = [t for t in times if not math.isinf(t)]
        if not drawn:
            return f"no plot in {wait:.0f} s"
        note = f" ({len(times) - len(drawn)} of {len(times)} none)" if len(drawn) < len(times) else ""
        return f"{median(drawn):.0f}{note}"

    print(f"\nSide by side, {n} trials: medians in ms (data: client-side on loopback; page: navigation to")
    print("the first plot holding data, in a fresh headless chromium; a first visit has an empty cache)")
    print(f"{'':44s} {'Hyperhive':>12s} {'optuna-dashboard':>18s}")
    wait = theirs.get("wait", VISIT_TIMEOUT_S)
    lines = [
        ("search/study data, cold: server time", ms(rows.get("cold app")), "-"),
        ("search/study data, cold: client on loopback", ms(rows.get("cold")), ms(theirs.get("cold"))),
        ("search/study data, warm: server time", ms(rows.get("warm app")), "-"),
        ("search/study data, warm: client on loopback", ms(rows.get("warm")), ms(theirs.get("warm"))),
        (
            "search/study data, size (MB)",
            f"{rows['size'][0] / 1e6:.2f}" if rows.get("size") else "-",
            f"{theirs['size'] / 1e6:.2f}" if theirs.get("size") else "-",
        ),
        ("page: first plot, first visit", visit(ours, 0, VISIT_TIMEOUT_S), visit(theirs, 0, wait)),
        ("page: first plot, second visit", visit(ours, 1, VISIT_TIMEOUT_S), visit(theirs, 1, wait)),
        ("page: first plot, third visit", visit(ours, 2, VISIT_TIMEOUT_S), visit(theirs, 2, wait)),
    ]
    for name, a, b in lines:
        print(f"{name:44s} {a:>12s} {b:>18s}")


VISIT_TIMEOUT_S = 120.0
ALL_PLOTS = ("#history", "#curves", "#parcoords", "#slices", "#importance")
FIRST_PLOT_PROBE = """
new MutationObserver((_, obs) => {
  const drawn = [...document.querySelectorAll('.js-plotly-plot')].some(
    (d) => d.querySelector('.main-svg') && (d.data || []).some((t) => t.x && t.x.length > 1));
  if (drawn && window.__firstPlot === undefined) { window.__firstPlot = performance.now(); obs.disconnect(); }
}).observe(document, { childList: true, subtree: true });
"""


def visits_in_child(
    url: str, session: tuple[str, str] | None, rest: tuple[str, ...], wait_s: float, visits: int
) -> list[float]:
    """:func:`page_times` in a child process (its own session) that is killed with its browser when it
    overruns ``visits * wait_s`` plus a minute: a page that keeps the browser's main thread busy can
    hold Playwright past its own timeouts. A killed child counts as no plot."""
    args = json.dumps([url, session, list(rest), wait_s, visits])
    proc = subprocess.Popen(
        [sys.executable, __file__, "--visit", args], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=visits * wait_s + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        print(
            f"  first visit                                no plot with data within {wait_s:.0f} s (killed)"
        )
        return [math.inf]
    lines = out.splitlines()
    print("\n".join(line for line in lines if not line.startswith("RESULT ")))
    found = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    return [math.inf if t is None else t for t in found[0]] if found else [math.inf]


def page_times(
    url: str, session: tuple[str, str] | None, rest: tuple[str, ...], wait_s: float, visits: int
) -> list[float]:
    """Up to ``visits`` visits of ``url`` in a new headless chromium (the first with an empty cache):
    the time from navigation to the first plot holding data (a plotly plot with a trace of 2+ points,
    seen by a MutationObserver in the page; ``inf`` when none within ``wait_s``; no further visit then)
    and, seen from outside, to every ``rest`` plot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    out: list[float] = []
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
        for label in ("first visit", "second visit (scripts cached)", "third visit")[:visits]:
            t0 = time.perf_counter()
            try:
                page.goto(url, wait_until="commit", timeout=wait_s * 1000)
                left = max(1.0, wait_s - (time.perf_counter() - t0))
                page.wait_for_function("window.__firstPlot !== undefined", timeout=left * 1000)
            except PlaywrightTimeout:
                print(f"  {label:42s} no plot with data within {wait_s:.0f} s")
                out.append(math.inf)
                break
            out.append(page.evaluate("window.__firstPlot"))
            for sel in rest:
                page.wait_for_selector(f"{sel} .main-svg", timeout=wait_s * 1000)
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
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState as OptunaState

    from hyperhive.service.dashboard.views import param_meta

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
        value = r.value
        done = value is not None
        curve = {e: value * (0.5 + e / 40) for e in range(1, 21)} if value is not None else {}
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


def serve_wsgi(app: Any, port: int = 0) -> tuple[str, Any]:
    """``app`` on 127.0.0.1 in a thread (a threading wsgiref server); its URL and the server."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Threading(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    httpd = make_server("127.0.0.1", port, app, server_class=Threading, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}", httpd


def serve_optuna(db: Path, sid: str, port: int) -> None:
    """(In a child process) optuna-dashboard over the search's trials in an in-memory Optuna study."""
    from optuna_dashboard import wsgi

    store = SQLiteStore(db)
    storage, _ = optuna_study(store, sid)
    store.close()
    url, _ = serve_wsgi(wsgi(storage), port)
    print(f"serving {url}", flush=True)
    threading.Event().wait()


def optuna_dashboard_times(db: Path, sid: str, repeat: int, browser: bool, wait_s: float) -> dict[str, Any]:
    """optuna-dashboard over the same trials, served by its own process (as ours is): its
    study-detail API (cold: the first request of the process; warm) and its study page's time to the
    first plot in a fresh chromium (one round: a visit may take minutes)."""
    try:
        import optuna_dashboard  # noqa: F401
    except ImportError:
        print("\n(optuna-dashboard is not installed: pip install optuna-dashboard)")
        return {}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-optuna", str(db), sid, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "serving URL" once the study is built
        if not line.startswith("serving "):
            raise RuntimeError(f"optuna-dashboard did not start: {line!r}")
        url = line.split()[1]
        print(
            f"\noptuna-dashboard {version('optuna-dashboard')}: the same trials in an in-memory Optuna study "
            f"({time.perf_counter() - t0:.1f}s to build and start)"
        )
        out: dict[str, Any] = {"wait": wait_s}
        with httpx.Client(base_url=url, timeout=600) as c:
            study_id = c.get("/api/studies").json()["study_summaries"][0]["study_id"]
            api = f"/api/studies/{study_id}?after=0"
            out["cold"] = timed(c, api, 1)
            r = c.get(api)
            out["size"] = len(r.content)
            out["warm"] = timed(c, api, max(1, min(repeat, 3)))  # each takes seconds
        print(f"  study API: cold {out['cold'][0]:.0f} ms, warm median {median(out['warm']):.0f} ms")
        if browser:
            out["visits"] = [visits_in_child(f"{url}/dashboard/studies/{study_id}", None, (), wait_s, 3)]
        return out
    finally:
        proc.kill()
        proc.wait(10)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-optuna"]:
        serve_optuna(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:2] == ["--visit"]:
        url, session, rest, wait_s, visits = json.loads(sys.argv[2])
        times = page_times(url, tuple(session) if session else None, tuple(rest), wait_s, visits)
        print("RESULT " + json.dumps([None if math.isinf(t) else t for t in times]), flush=True)
    else:
        main()
