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
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import uvicorn
import yaml

from hyperhive.models import TrialResult
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore
from search_spaces import load

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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        store, sid, token = build_store(Path(d) / "bench.db", args.trials)
        print(f"built a search of {args.trials} trials in {time.perf_counter() - t0:.1f}s")
        from service.app import create_app

        settings = Settings(store=f"sqlite:///{d}/bench.db", home=Path(d) / "home")  # type: ignore[call-arg]
        server = uvicorn.Server(uvicorn.Config(create_app(settings, store), port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        cookies = {"hyperhive_session": token}
        print(f"\n{'endpoint (client-side ms on loopback)':44s} {'median':>9s} {'p95':>9s} {'n':>4s}")
        with httpx.Client(base_url=url, cookies=cookies, timeout=120) as c:
            api = f"/dashboard-api/searches/{sid}"
            cold = timed(c, f"{api}/rows", 1)
            full = c.get(f"{api}/rows")
            row("rows, all (cold cache)", cold, len(full.content))
            row("rows, all (warm cache)", timed(c, f"{api}/rows", args.repeat), len(full.content))
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
        if not args.no_browser:
            browser_times(url, sid, token)
        server.should_exit = True
        thread.join(10)
        store.close()


def browser_times(url: str, sid: str, token: str) -> None:
    path = shutil.which("chromium")
    if path is None:
        print("\n(no chromium: skipping the browser timings)")
        return
    from playwright.sync_api import sync_playwright

    print(f"\n{'search page in headless chromium (ms)':44s} {'first plot':>10s} {'all plots':>10s}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader"]
        )
        ctx = b.new_context()
        ctx.add_cookies([{"name": "hyperhive_session", "value": token, "url": url}])
        page = ctx.new_page()
        for label in ("first visit", "second visit (plotly.js cached)", "third visit"):
            t0 = time.perf_counter()
            page.goto(f"{url}/searches/{sid}", wait_until="commit")
            page.wait_for_selector("#history .main-svg", timeout=120_000)
            first = (time.perf_counter() - t0) * 1000
            for sel in ("#curves", "#parcoords", "#slices", "#importance"):
                page.wait_for_selector(f"{sel} .main-svg", timeout=120_000)
            print(f"{label:44s} {first:10.0f} {(time.perf_counter() - t0) * 1000:10.0f}")
            marks = page.evaluate(
                "performance.getEntriesByType('mark').filter(m => m.name.startsWith('hh:'))"
                ".map(m => m.name.slice(3) + ' ' + Math.round(m.startTime)).join(', ')"
            )
            print(f"    page marks (ms after navigation): {marks}")
        b.close()


if __name__ == "__main__":
    main()
