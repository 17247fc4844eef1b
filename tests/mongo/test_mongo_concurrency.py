"""Concurrent claims, reports and sweeps: threads on mongomock (each call holds the client's lock, the
atomicity a server gives one document), and processes on a real server when HYPERHIVE_TEST_MONGO_URL is
set."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest
from mongokit import (
    NO_SERVER,
    REAL_URL,
    FakeClock,
    assert_consistent,
    make_mongo_store,
    search_spec,
    unique_db,
)

from hyperhive.models import SearchStatus, TrialResult
from hyperhive.store.mongo import MongoStore


def _sibling(store: MongoStore, clock: FakeClock | None = None) -> MongoStore:
    """Another store object on the same database, as a second process would open it."""
    other = MongoStore(store.url, database=store.database, client=store.client)
    if clock is not None:
        other.clock = clock
    return other


def _work(store: MongoStore, worker: str, done: list[tuple[str, int]], errors: list[BaseException]) -> None:
    try:
        while (t := store.claim(worker, 60)) is not None:
            assert t.lease_token and t.config is not None
            store.report(t.id, t.lease_token, TrialResult.done({"loss": t.config["params"]["x"]}))
            done.append((t.id, t.number))
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def test_threads_and_store_objects_claim_every_slot_exactly_once(mstore: MongoStore) -> None:
    s = mstore.create_search(search_spec(max_trials=48))
    stores = [mstore, _sibling(mstore), _sibling(mstore)]
    done: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_work, args=(stores[i % 3], f"w{i}", done, errors)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert sorted(n for _, n in done) == list(range(48)), "every slot once, none twice"
    final = mstore.get_search(s.id)
    assert final.status == SearchStatus.COMPLETED and final.counts.done == 48
    best = min(mstore.list_trials(s.id), key=lambda t: t.value or 0.0)
    assert final.best_trial_id == best.id
    assert_consistent(mstore, s.id)


def test_many_sweepers_requeue_each_expired_trial_once(mstore: MongoStore) -> None:
    clock = FakeClock()
    mstore.clock = clock
    s = mstore.create_search(search_spec(max_trials=20, max_retries=5))
    claimed = [mstore.claim("lost-machine", 5) for _ in range(20)]
    assert all(claimed)
    clock.advance(6)
    sweepers = [_sibling(mstore, clock) for _ in range(5)]
    moved: list[int] = []
    barrier = threading.Barrier(len(sweepers))

    def sweep(store: MongoStore) -> None:
        barrier.wait()
        moved.append(store.requeue_expired())

    threads = [threading.Thread(target=sweep, args=(st,)) for st in sweepers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert sum(moved) == 20, f"each trial requeued once, by one sweeper: {moved}"
    search = mstore.get_search(s.id)
    assert search.counts.queued == 20 and search.counts.running == 0
    assert_consistent(mstore, s.id)


def test_reports_racing_a_sweep_count_once(mstore: MongoStore) -> None:
    """Workers report while sweepers requeue the same expired leases: each trial ends either done
    (the report won) or queued (the sweep won), and the counters match."""
    clock = FakeClock()
    mstore.clock = clock
    s = mstore.create_search(search_spec(max_trials=16, max_retries=5))
    claimed = [t for t in (mstore.claim("w", 5) for _ in range(16)) if t]
    clock.advance(6)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def report_all() -> None:
        for t in claimed:
            assert t.lease_token
            try:
                mstore.report(t.id, t.lease_token, TrialResult.done({"loss": 0.5}))
                with lock:
                    outcomes["reported"] += 1
            except Exception as exc:
                with lock:
                    outcomes[type(exc).__name__] += 1

    sweeper = _sibling(mstore, clock)
    threads = [threading.Thread(target=report_all), threading.Thread(target=sweeper.requeue_expired)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    counts = mstore.get_search(s.id).counts
    assert counts.done == outcomes["reported"] and counts.done + counts.queued == 16
    assert set(outcomes) <= {"reported", "LeaseLost"}
    assert_consistent(mstore, s.id)


# ---------------------------------------------------------------------------------------------- processes
def _process_worker(url: str, db: str, worker: str, out: Any) -> None:
    store = MongoStore(url, database=db)
    numbers = []
    while (t := store.claim(worker, 60)) is not None:
        assert t.lease_token and t.config is not None
        store.report(t.id, t.lease_token, TrialResult.done({"loss": t.config["params"]["x"]}))
        numbers.append(t.number)
    store.close()
    out.put(numbers)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_URL, reason=NO_SERVER)
def test_processes_on_a_real_server_claim_every_slot_once() -> None:
    assert REAL_URL is not None
    db = unique_db()
    store = MongoStore(REAL_URL, database=db)
    try:
        s = store.create_search(search_spec(max_trials=60))
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_process_worker, args=(REAL_URL, db, f"p{i}", out)) for i in range(4)]
        for p in procs:
            p.start()
        numbers = [n for _ in procs for n in out.get(timeout=300)]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert sorted(numbers) == list(range(60))
        final = store.get_search(s.id)
        assert final.status == SearchStatus.COMPLETED and final.counts.done == 60
        assert_consistent(store, s.id)
    finally:
        store.client.drop_database(db)
        store.close()


def test_make_mongo_store_says_which_backend() -> None:
    store, cleanup = make_mongo_store()
    try:
        assert store.client.__class__.__module__.startswith("pymongo" if REAL_URL else "mongomock")
    finally:
        cleanup()
