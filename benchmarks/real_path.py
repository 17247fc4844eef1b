"""The real path a user runs, for :mod:`core_overhead`: ``hyperhive serve`` on a SQLite file, searches
submitted over REST, ``hyperhive worker --cpu`` processes running a function objective, finished when
the API says so.

Timing comes from the store's own stamps of every trial (``started_at``/``finished_at``, written by the
worker processes), read back over the API once the search is done: per trial, the median gap between
consecutive finishes (the worker loop's steady cost: claim, suggestion, objective, report), and the
span from the first start to the last finish (throughput). ``e2e`` is the wall time from the submit to
the API's ``completed``, polled every 50 ms (it includes the worker's idle back-off before the first
claim, the engine's first look at the search and the poll). The workers log at their default level
(INFO) into a file, as ``hyperhive up`` has them do.

A TPE search at ``n`` finished trials cannot be submitted with a history over REST: its ``n`` trials are
filled with random suggestions and random losses, exported and imported as a TPE search (what
``hyperhive store import`` does), and the running workers then run its next trials.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _stats import p95

from hyperhive.client import Client
from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore

OBJECTIVE = {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"}
TOY_PARAMS = {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}, "z": {"choice": [1, 2, 3]}}
TPE5_PARAMS = {  # the space, as benchmarks/tpe_scale.py's SPACE
    "a": {"uniform": [0, 1]},
    "b": {"loguniform": [1e-4, 1]},
    "c": {"choice": [0, 1, 2]},
    "d": {"quniform": [1, 100, 1]},
    "e": {"uniform": [-5, 5]},
}


POLL_SECONDS = 0.05
"""How often the API is asked whether a search is done (each answer costs the server's CPU, which the
workers share on a small machine)."""


def search_doc(
    algorithm: str, max_trials: int, params: dict[str, Any], name: str = "real-path"
) -> dict[str, Any]:
    return {
        "name": name,
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": 7,
        "objective": OBJECTIVE,
        "params": params,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    """The servers' and workers' environment: this interpreter's installed Hyperhive, no store setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.pop("PYTHONPATH", None)
    return env


@dataclass
class Stack:
    """A server and its workers on one SQLite file."""

    folder: Path
    client: Client
    procs: list[subprocess.Popen[bytes]]

    @property
    def db(self) -> Path:
        return self.folder / "hh.db"

    def submit(self, doc: dict[str, Any]) -> str:
        return str(self.client.submit(doc)["id"])

    def wait_done(self, search_id: str, timeout: float = 600.0) -> float:
        """Poll the API until the search is final; returns the moment it was seen final."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.client.get_search(search_id)["status"]
            if status in ("completed", "failed", "cancelled"):
                if status != "completed":
                    raise RuntimeError(f"search {search_id} ended {status}")
                return time.perf_counter()
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"search {search_id} not done after {timeout} s")

    def trials(self, search_id: str) -> list[dict[str, Any]]:
        """Every trial of the search as the API lists it, by number."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.client.trials(search_id, limit=500, offset=offset)
            items = page["items"]
            out += items
            offset += len(items)
            if not items or offset >= page["total"]:
                return out

    def stamps(self, search_id: str) -> list[tuple[float, float]]:
        """(started_at, finished_at) of every trial, by number, read over the API."""
        return [(t["started_at"], t["finished_at"]) for t in self.trials(search_id)]


@contextlib.contextmanager
def stack(
    workers: int, worker_args: Sequence[str] = (), worker_env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    """``hyperhive serve --no-auth`` on a fresh SQLite file and ``workers`` ``hyperhive worker --cpu``
    processes (with ``worker_args`` added to their command line and ``worker_env`` to their
    environment), warmed up on a small search (imports done, store opened) before it is yielded."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'hh.db'}"
        SQLiteStore(folder / "hh.db").close()
        port = _free_port()
        py = [sys.executable, "-m", "hyperhive.cli"]
        out = open(folder / "log.txt", "wb")  # noqa: SIM115 - closed below
        procs = [
            subprocess.Popen(
                [*py, "serve", "--store", url, "--no-auth", "--port", str(port), "--log-level", "warning"],
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        ]
        try:
            for _ in range(workers):
                cmd = [
                    *py,
                    "worker",
                    "--store",
                    url,
                    "--cpu",
                    *worker_args,
                ]  # default log level, into log.txt
                env = {**_env(), **(worker_env or {})}
                procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
            client = Client(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 60
            while not client.ready():
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise RuntimeError("hyperhive serve did not start: " + (folder / "log.txt").read_text())
                time.sleep(0.1)
            s = Stack(folder, client, procs)
            s.wait_done(s.submit(search_doc("random", 10 * workers, TOY_PARAMS, "warm-up")), timeout=120)
            yield s
        finally:
            for p in procs[1:] + procs[:1]:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
            out.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    per_trial_ms: float
    """Median gap between consecutive finishes (1 worker: one trial's whole loop)."""
    trials_per_s: float
    """Trials over the span from the first start to the last finish."""
    e2e_ms: float
    """Submit to the API's ``completed``, per trial."""
    worker_cpu_ms: float | None = None
    """CPU time (user + system) the worker processes spent per trial, submit to done: what a trial
    costs whatever else the machine runs (a shared machine stretches the wall times, not this)."""
    p95_ms: float | None = None
    """The 95th percentile of the gaps between consecutive finishes."""


def measure(s: Stack, doc: dict[str, Any], skip: int = 0) -> Run:
    """Submit ``doc`` over REST (or, with ``skip``, take the running imported search ``doc['id']``),
    wait for the API's ``completed``, and time its trials from number ``skip`` on."""
    cpu0 = [cpu_seconds(p.pid) for p in s.procs[1:]]
    t0 = time.perf_counter()
    search_id = doc["id"] if skip else s.submit(doc)
    t1 = s.wait_done(search_id)
    cpu1 = [cpu_seconds(p.pid) for p in s.procs[1:]]
    stamps = sorted(s.stamps(search_id)[skip:], key=lambda p: p[1])
    n = len(stamps)
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(stamps)]
    span = stamps[-1][1] - min(p[0] for p in stamps)
    cpu = None
    if None not in cpu0 and None not in cpu1:
        cpu = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / n * 1e3  # type: ignore[operator]
    return Run(statistics.median(gaps) * 1e3, n / span, (t1 - t0) / n * 1e3, cpu, p95(gaps) * 1e3)


def tpe_bundle(finished: int, more: int, rng_seed: int = 0) -> dict[str, Any]:
    """An export bundle of a running TPE search on the 5-parameter space holding ``finished`` finished
    trials and ``more`` open slots (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "fill.db")
        try:
            filler = store.create_search(validate(search_doc("random", finished, TPE5_PARAMS, "filler")))
            rng = np.random.default_rng(rng_seed)
            while (t := store.claim("filler", 60)) is not None:
                assert t.lease_token
                store.report(t.id, t.lease_token, TrialResult.done({"loss": float(rng.random())}))
            bundle = store.export_search(filler.id)
        finally:
            store.close()
    doc = search_doc("tpe", finished + more, TPE5_PARAMS, f"tpe-at-{finished}")
    bundle["search"].update(
        document=doc, name=doc["name"], algorithm="tpe", max_trials=finished + more, status="running"
    )
    return bundle


def random_rows(workers: int, n: int, repeats: int) -> list[Run]:
    """``repeats`` random searches of ``n`` trials (toy space) through one stack of ``workers`` workers."""
    with stack(workers) as s:
        return [measure(s, search_doc("random", n, TOY_PARAMS, f"random-{i}")) for i in range(repeats)]


def tpe_rows(sizes: tuple[int, ...], more: int) -> dict[int, Run]:
    """For each size: the ``more`` trials after that many finished ones of a TPE search (5 parameters),
    run by one worker; one stack for all sizes."""
    bundles = {n: tpe_bundle(n, more) for n in sizes}
    out = {}
    with stack(1) as s:
        for n, bundle in bundles.items():
            t0 = time.perf_counter()
            store = SQLiteStore(s.db)
            try:
                search_id = store.import_search(bundle).id
            finally:
                store.close()
            out[n] = measure(s, {"id": search_id}, skip=n)
            out[n].e2e_ms = (time.perf_counter() - t0) / more * 1e3
    return out
