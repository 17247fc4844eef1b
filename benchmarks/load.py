"""Load: concurrent HTTP clients against ``hyperhive serve`` on a store that already holds many trials.

A store is filled (through the store interface: one small search run for real, then exported and
imported again and again) with ``--searches`` searches of ``--trials`` trials each (default 100 x 500 =
50,000), ``hyperhive serve`` is started on it and one ``hyperhive worker`` runs the searches the clients
submit. ``--clients`` closed-loop clients (default 50, each its own connection, 127.0.0.1 only) then, for
``--seconds`` (default 60), mix: search status, a page of a search's trials, a trial's details, the list of
searches, and now and then a new search. Printed: per route the count, requests/s, p50 and p99 latency,
4xx, 5xx and dropped connections (a request whose connection broke: httpx transport errors), the
server's RSS before and after, and the server's CPU seconds per request (on a shared machine latency
follows how much CPU the server is given; its CPU per request does not). ``--mongo URL`` runs the same
on a MongoDB server, in a fresh database dropped afterwards.

Goals (issue 14): no 5xx, no dropped connection, p99 <= 100 ms for status and list pages, memory flat.

Run: ``.venv/bin/python benchmarks/load.py --seconds 20``. Numbers on a shared machine move a lot; the
machine, the sizes and the command belong next to any figure quoted.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store, open_store

REPO = Path(__file__).resolve().parents[1]


def search_doc(max_trials: int, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "algorithm": "random",
        "max_trials": max_trials,
        "seed": 3,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "loss",
            "mode": "min",
        },
        "params": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}, "z": {"choice": [1, 2, 3]}},
    }


def fill(store: Store, searches: int, trials: int) -> tuple[list[str], list[str]]:
    """``searches`` completed searches of ``trials`` done trials each, owned by ``local`` (the --no-auth
    user); returns the search ids and a sample of trial ids."""
    seed = store.create_search(validate(search_doc(20, "seed")), owner="local")
    rng = random.Random(0)
    while (t := store.claim("fill", 60)) is not None:
        assert t.lease_token
        store.report(t.id, t.lease_token, TrialResult.done({"loss": rng.random()}))
    bundle = store.export_search(seed.id)
    store.delete_search(seed.id)
    templates = bundle["trials"]
    search_ids: list[str] = []
    trial_ids: list[str] = []
    for s in range(searches):
        b = copy.deepcopy(bundle)
        sid = uuid.uuid4().hex[:16]
        b["search"].update(id=sid, name=f"load-{s}", max_trials=trials, status="completed")
        b["search"]["document"].update(name=f"load-{s}", max_trials=trials)
        rows = []
        for i in range(trials):
            t = copy.copy(templates[i % len(templates)])
            loss = rng.random()
            t.update(
                id=uuid.uuid4().hex[:16], search_id=sid, number=i, value=loss, loss=loss,
                metrics={"loss": loss}, history=[{"epoch": 1, "loss": loss}],
            )  # fmt: skip
            rows.append(t)
        b["trials"] = rows
        b["search"]["best_trial_id"] = min(rows, key=lambda t: t["value"])["id"]
        store.import_search(b)
        search_ids.append(sid)
        trial_ids.extend(t["id"] for t in rows[:: max(1, trials // 20)])
    return search_ids, trial_ids


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Route:
    ms: list[float] = field(default_factory=list)
    s4xx: int = 0
    s5xx: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)


class Load:
    def __init__(self, url: str, search_ids: list[str], trial_ids: list[str], seconds: float) -> None:
        self.url, self.search_ids, self.trial_ids, self.seconds = url, search_ids, trial_ids, seconds
        self.routes: dict[str, Route] = {}
        self.submitted: list[str] = []

    def pick(self, rng: random.Random) -> tuple[str, str, str, Any]:
        """(route name, method, path, JSON body)."""
        roll = rng.random()
        sid = rng.choice(self.search_ids + self.submitted[-20:])
        if roll < 0.02:
            return "submit", "POST", "/api/searches", search_doc(5, "submitted")
        if roll < 0.37:
            return "search status", "GET", f"/api/searches/{sid}", None
        if roll < 0.67:
            offset = rng.randrange(0, 400)
            return "trial list (100)", "GET", f"/api/searches/{sid}/trials?limit=100&offset={offset}", None
        if roll < 0.87:
            return "trial details", "GET", f"/api/trials/{rng.choice(self.trial_ids)}", None
        return "search list", "GET", "/api/searches?limit=50", None

    async def client(self, n: int, c: httpx.AsyncClient, deadline: float) -> None:
        rng = random.Random(n)
        while time.monotonic() < deadline:
            name, method, path, body = self.pick(rng)
            route = self.routes.setdefault(name, Route())
            t = time.perf_counter()
            try:
                r = await c.request(method, path, json=body)
            except httpx.TransportError as exc:
                route.dropped += 1
                route.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            route.ms.append((time.perf_counter() - t) * 1000)
            if r.status_code >= 500:
                route.s5xx += 1
                route.errors.append(f"{r.status_code} {r.text[:200]}")
            elif r.status_code >= 400:
                route.s4xx += 1
            elif name == "submit":
                self.submitted.append(r.json()["id"])

    async def run(self, clients: int) -> float:
        # every client its own connection, all made before the clock starts (an httpx client costs
        # tens of ms of CPU to build; 50 built inside the run would stall the event loop for seconds).
        # Plain HTTP on loopback: no TLS context to load.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        pool = [
            httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits, verify=False)
            for _ in range(clients)
        ]
        try:
            await asyncio.gather(*(c.get("/healthz") for c in pool))
            t0 = time.monotonic()
            deadline = t0 + self.seconds
            tasks = [self.client(i, c, deadline) for i, c in enumerate(pool)]
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=self.seconds + 60)
            return time.monotonic() - t0
        finally:
            await asyncio.gather(*(c.aclose() for c in pool))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)))


def start(args: list[str], folder: Path, log: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    with (folder / log).open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hyperhive.cli", *args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=folder,
        )  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready in {timeout}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the clients run (default 60)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50, at most 500)")
    ap.add_argument("--searches", type=int, default=100, help="searches in the store (default 100)")
    ap.add_argument("--trials", type=int, default=500, help="trials per search (default 500)")
    ap.add_argument("--no-worker", action="store_true", help="no worker running the submitted searches")
    ap.add_argument(
        "--mongo",
        metavar="URL",
        help="run on this MongoDB server instead of SQLite, in a fresh database dropped afterwards "
        '(e.g. --mongo "$HYPERHIVE_TEST_MONGO_URL")',
    )
    ap.add_argument(
        "--py-spy",
        metavar="FILE",
        help="profile the server while the clients run: py-spy (on PATH) samples the thread holding the GIL "
        "into FILE (raw collapsed stacks)",
    )
    args = ap.parse_args()
    if not 1 <= args.clients <= 500 or not 0 < args.seconds <= 3600:
        ap.error("--clients must be 1..500 and --seconds 0..3600")
    with tempfile.TemporaryDirectory(prefix="hh-load-") as d:
        folder = Path(d)
        db = folder / "load.db"
        t0 = time.monotonic()
        store_url = f"sqlite:///{db}"
        database = f"hyperhive_load_{uuid.uuid4().hex[:10]}"
        if args.mongo:
            store_url = mongo_database_url(args.mongo, database)
        store: Store = open_store(store_url) if args.mongo else SQLiteStore(db)
        search_ids, trial_ids = fill(store, args.searches, args.trials)
        n_trials = args.searches * args.trials
        print(f"filled {args.searches} searches, {n_trials} trials in {time.monotonic() - t0:.1f}s")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start(["serve", "--no-auth", "--store", store_url, "--port", str(port), "--log-level",
                        "warning"], folder, "serve.log")  # fmt: skip
        worker = None
        try:
            wait_ready(url, server)
            if not args.no_worker:
                cmd = [
                    "worker",
                    "--store",
                    store_url,
                    "--allow-objective",
                    "hyperhive.demo_objectives",
                ]
                worker = start([*cmd, "--log-level", "WARNING"], folder, "worker.log")
            # one warm-up pass so "before" is the server's settled size, not its import-time size
            with httpx.Client(base_url=url, timeout=30) as c:
                for sid in search_ids[:5]:
                    c.get(f"/api/searches/{sid}")
                    c.get(f"/api/searches/{sid}/trials?limit=100")
            before = rss_mb(server.pid)
            cpu0, own0, load0 = cpu_seconds(server.pid), time.process_time(), os.getloadavg()[0]
            load = Load(url, search_ids, trial_ids, args.seconds)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(server.pid), "--gil", "-r", "250", "-f", "raw",
                     "-o", args.py_spy, "-d", str(int(args.seconds))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            elapsed = asyncio.run(load.run(args.clients))
            after = rss_mb(server.pid)
            server_cpu, own_cpu = cpu_seconds(server.pid) - cpu0, time.process_time() - own0
            load1 = os.getloadavg()[0]
            if spy is not None:
                spy.wait(60)
        finally:
            for proc in (worker, server):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            if args.mongo:
                store.client.drop_database(database)  # type: ignore[attr-defined]
            store.close()
        rows = []
        total = Route()
        for name, r in sorted(load.routes.items()):
            total.ms += r.ms
            total.s4xx += r.s4xx
            total.s5xx += r.s5xx
            total.dropped += r.dropped
            total.errors += r.errors
            rows.append(_row(name, r, elapsed))
        rows.append(_row("all", total, elapsed))
        backend = "MongoDB" if args.mongo else "SQLite"
        print(
            f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"{args.clients} clients for {elapsed:.1f}s against hyperhive serve ({backend}) holding "
            f"{args.searches} searches / {n_trials} trials, "
            f"{'no worker' if args.no_worker else 'a worker running'}; "
            f"{len(load.submitted)} searches submitted"
        )
        table(
            "per route (client-side latency, loopback)",
            ["route", "requests", "req/s", "p50 ms", "p99 ms", "4xx", "5xx", "dropped"],
            rows,
        )
        print(f"\nserver RSS: {before:.0f} MB before, {after:.0f} MB after the load")
        n = len(total.ms) + total.dropped
        # on a shared machine latency follows what the server is given; CPU per request does not
        print(
            f"server CPU: {server_cpu:.1f} s in {elapsed:.1f} s ({server_cpu / elapsed:.0%} of a core), "
            f"{server_cpu / max(n, 1) * 1000:.2f} ms per request; the clients used {own_cpu:.1f} s; "
            f"load average {load0:.1f} -> {load1:.1f}"
        )
        for e in sorted(set(total.errors))[:10]:
            print(f"  error: {e}")
        return 1 if total.s5xx or total.dropped else 0


def _row(name: str, r: Route, elapsed: float) -> list[str]:
    n = len(r.ms) + r.dropped
    return [
        name, str(n), f"{n / elapsed:.1f}", f"{pct(r.ms, 50):.1f}", f"{pct(r.ms, 99):.1f}",
        str(r.s4xx), str(r.s5xx), str(r.dropped),
    ]  # fmt: skip


def mongo_database_url(url: str, database: str) -> str:
    """``url`` (a MongoDB server) naming ``database``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
