"""The worker's one heartbeat thread: reused by every trial, beats each on time, none after it ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from workerkit import create_search, function_doc

from hyperhive.models import HeartbeatAction, HeartbeatReply, Trial, TrialState
from hyperhive.store import SQLiteStore
from hyperhive.workers.daemon import Heartbeat, HeartbeatThread, Worker, WorkerOptions
from hyperhive.workers.execution import TrialControl


class Beats:
    """A store that records heartbeats (trial id, moment) and always says continue."""

    def __init__(self) -> None:
        self.beats: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def heartbeat(self, trial_id: str, token: str, lease: float, *a: Any, **kw: Any) -> HeartbeatReply:
        with self.lock:
            self.beats.append((trial_id, time.monotonic()))
        return HeartbeatReply(HeartbeatAction.CONTINUE, None, None)

    def of(self, trial_id: str) -> list[float]:
        with self.lock:
            return [t for i, t in self.beats if i == trial_id]


def trial(trial_id: str) -> Trial:
    return Trial(
        id=trial_id,
        search_id="s",
        number=0,
        state=TrialState.RUNNING,
        config={},
        vals={},
        seed=1,
        created_at=0.0,
        updated_at=0.0,
        lease_token="tok",
    )


def heartbeat(store: Beats, trial_id: str, thread: HeartbeatThread, interval: float = 0.05) -> Heartbeat:
    return Heartbeat(
        store,  # type: ignore[arg-type]
        trial(trial_id),
        TrialControl(),
        lease_seconds=60,
        interval=interval,
        thread=thread,
    )


def test_one_thread_beats_each_trial_after_its_interval_and_never_after_it_ends() -> None:
    store, thread = Beats(), HeartbeatThread()
    before = threading.active_count()
    first = heartbeat(store, "t1", thread, interval=0.2)
    start = time.monotonic()
    first.start()
    time.sleep(0.5)
    first.stop()
    beats = store.of("t1")
    assert len(beats) == 2 and beats[0] - start >= 0.2, "first beat after one interval, then each interval"
    time.sleep(0.1)  # the idle thread sleeps one interval between wakes: the next trial starts mid-way
    second = heartbeat(store, "t2", thread, interval=0.2)
    start = time.monotonic()
    second.start()
    time.sleep(0.3)
    second.stop()
    [beat] = store.of("t2")
    assert 0.2 <= beat - start < 0.29, (
        "beaten one interval after its start, not at the idle thread's next wake"
    )
    time.sleep(0.3)
    assert store.of("t1") == beats and store.of("t2") == [beat], "no beat after stop()"
    assert threading.active_count() == before + 1, "one thread for both trials"
    thread.close()
    assert threading.active_count() == before


def test_a_short_trial_is_never_beaten() -> None:
    store, thread = Beats(), HeartbeatThread()
    for i in range(200):
        hb = heartbeat(store, f"t{i}", thread, interval=0.5)
        hb.start()
        hb.stop()
    time.sleep(0.6)
    assert store.beats == []
    thread.close()


def test_a_heartbeat_alone_runs_its_own_thread() -> None:
    store = Beats()
    hb = Heartbeat(store, trial("t"), TrialControl(), lease_seconds=60, interval=0.03)  # type: ignore[arg-type]
    hb.start()
    time.sleep(0.1)
    hb.stop()
    assert len(store.of("t")) >= 2


def test_a_worker_runs_many_trials_on_one_heartbeat_thread(store: SQLiteStore, tmp_path: Path) -> None:
    s = create_search(store, function_doc(max_trials=30, function="hyperhive.demo_objectives:quadratic"))
    names: set[str] = set()
    real = HeartbeatThread.watch

    def spy(self: HeartbeatThread, hb: Heartbeat) -> None:
        real(self, hb)
        assert self._thread is not None
        names.add(f"{self._thread.name}:{self._thread.ident}")

    HeartbeatThread.watch = spy  # type: ignore[method-assign]
    try:
        Worker(store, WorkerOptions(burst=True, data_dir=tmp_path, heartbeat_seconds=5)).work()
    finally:
        HeartbeatThread.watch = real  # type: ignore[method-assign]
    assert store.get_search(s.id).counts.done == 30
    assert len(names) == 1
