"""The chaos run: workers SIGKILLed at random moments (claiming, mid-trial, reporting, heartbeating) and
restarted, the API server killed and restarted twice, all on one real SQLite store (and on MongoDB where
``HYPERHIVE_TEST_MONGO_URL`` names a server); at the end the search
holds exactly ``max_trials`` done trials, each number once, each report counted once, nothing left
running, and every trial a killed worker held was run again by another worker.

Seeded: the seed is printed, and ``HYPERHIVE_CHAOS_SEED=<seed>`` replays the same kill schedule (the
moments a kill lands in still depend on the machine's timing). ``HYPERHIVE_SOAK=1`` runs a longer soak
(more trials, more workers, more kills)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from chaoskit import Server, WorkerProc, backend_store, kill, needs_mongo
from invariants import assert_search_consistent, sqlite_integrity

from hyperhive.models import SearchStatus, TrialState
from hyperhive.store import Store
from hyperhive.testing import assert_mongo_consistent

pytestmark = pytest.mark.slow

SOAK = os.environ.get("HYPERHIVE_SOAK") == "1"


@dataclass
class Plan:
    trials: int = 1000 if SOAK else 100
    workers: int = 4 if SOAK else 3
    kills: int = 80 if SOAK else 10  # worker kills; the server is killed twice besides
    nap: tuple[float, float] = (0.02, 0.2)
    deadline_s: float = 900 if SOAK else 75


@dataclass
class Killed:
    pid: int
    trials: list[str] = field(default_factory=list)  # running trials its worker held when it died


class ApiPoller(threading.Thread):
    """Reads the search's status from the API all along: answers counted by status, refusals while the
    server is down counted apart; any 5xx is a failure."""

    def __init__(self, server: Server, search_id: str) -> None:
        super().__init__(daemon=True)
        self.server, self.search_id = server, search_id
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.down = 0
        self.bad: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(f"{self.server.url}/api/searches/{self.search_id}")
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                    if r.status_code >= 500:
                        self.bad.append(f"{r.status_code} {r.text[:200]}")
                except httpx.TransportError:
                    self.down += 1
                self.stop.wait(0.1)


def _held_by(store: Store, search_id: str, pid: int) -> list[str]:
    return [
        t.id
        for t in store.list_trials(search_id, state=TrialState.RUNNING)
        if t.worker_id and f"-{pid}-" in f"{t.worker_id}-"
    ]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=needs_mongo)])
def test_chaos_run(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    seed = int(os.environ.get("HYPERHIVE_CHAOS_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"chaos seed {seed} (replay: HYPERHIVE_CHAOS_SEED={seed}){' soak' if SOAK else ''}")
    rng = random.Random(seed)
    plan = Plan()
    t_setup = time.monotonic()
    store, url, cleanup = backend_store(backend, tmp_path)
    request.addfinalizer(cleanup)
    server = Server(url, tmp_path)
    server.start()
    r = httpx.post(
        f"{server.url}/api/searches",
        json={
            "name": "chaos",
            "max_trials": plan.trials,
            "max_retries": 100,  # a trial killed again and again must still finish
            "seed": seed,
            "algorithm": "random",
            "objective": {"function": "chaos_objectives:napping_square"},
            "params": {"x": {"uniform": [-2, 2]}, "nap": {"uniform": list(plan.nap)}},
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    search_id = r.json()["id"]
    workers = [WorkerProc(url, tmp_path, f"w{i}") for i in range(plan.workers)]
    poller = ApiPoller(server, search_id)
    killed: list[Killed] = []
    server_kills_at = [0.2 + 0.1 * rng.random(), 0.5 + 0.15 * rng.random()]  # fractions of the trials done
    restarts: list[threading.Thread] = []
    t0 = time.monotonic()
    print(f"setup {t0 - t_setup:.1f}s")
    try:
        for w in workers:
            w.start()
        poller.start()
        next_kill = t0 + rng.uniform(0.5, 1.5)
        while True:
            s = store.get_search(search_id)
            if s.status.is_final:
                break
            now = time.monotonic()
            assert now - t0 < plan.deadline_s, f"seed {seed}: not finished in {plan.deadline_s}s: {s.counts}"
            if server_kills_at and s.counts.done >= server_kills_at[0] * plan.trials:
                server_kills_at.pop(0)
                for t in restarts:
                    t.join(60)
                server.kill()  # restarted in the background while the killer goes on
                restarts.append(threading.Thread(target=server.start, daemon=True))
                restarts[-1].start()
            if len(killed) < plan.kills and now >= next_kill:
                w = rng.choice(workers)
                if w.alive():
                    assert w.proc is not None
                    pid = w.proc.pid
                    kill(w.proc)
                    killed.append(Killed(pid, _held_by(store, search_id, pid)))
                    time.sleep(rng.uniform(0.0, 0.5))
                w.start()
                next_kill = time.monotonic() + rng.uniform(0.1, 1.2)
            for w in workers:
                log = (tmp_path / f"{w.name}.log").read_text()[-2000:] if not w.alive() else ""
                assert w.alive(), f"seed {seed}: worker {w.name} exited by itself: {log}"
            time.sleep(0.05)
        for t in restarts:
            t.join(60)
        elapsed = time.monotonic() - t0
        final = httpx.get(f"{server.url}/api/searches/{search_id}", timeout=10)
    finally:
        poller.stop.set()
        for w in workers:
            kill(w.proc, signal.SIGTERM)
        server.kill()
        poller.join(10)

    s = store.get_search(search_id)
    trials = assert_search_consistent(store, search_id)
    info = (
        f"seed {seed}: {len(killed)} worker kills ({sum(len(k.trials) for k in killed)} held a trial), "
        f"{server.starts - 1} server restarts, {elapsed:.1f}s, "
        f"api {poller.statuses} down {poller.down}"
    )
    print(info)
    assert s.status == SearchStatus.COMPLETED, info
    assert len(trials) == plan.trials and s.counts.done == plan.trials and s.counts.finished == plan.trials, (
        info
    )
    assert [t.number for t in trials] == list(range(plan.trials))
    assert not any(t.state == TrialState.RUNNING or t.lease_token for t in trials)
    # every trial a killed worker held was run to the end again, by a later claim
    by_id = {t.id: t for t in trials}
    held = [(k.pid, tid) for k in killed for tid in k.trials]
    for pid, tid in held:
        t = by_id[tid]
        assert t.state == TrialState.DONE and t.attempts >= 2, (pid, t)
        assert f"-{pid}-" not in f"{t.worker_id}-", (pid, t.worker_id)
    assert len(killed) >= min(3, plan.kills), info  # the run did hunt: kills landed
    assert server.starts == 3, info
    # the API agrees with the store, and never answered a 5xx through the restarts
    assert not poller.bad, poller.bad
    assert poller.statuses.get(200, 0) > 0, info
    assert final.status_code == 200 and final.json()["counts"]["done"] == plan.trials
    assert final.json()["best_value"] == s.best_value
    if backend == "sqlite":
        assert sqlite_integrity(tmp_path / "store.db") == "ok"
    else:
        assert_mongo_consistent(store, search_id)  # type: ignore[arg-type]
