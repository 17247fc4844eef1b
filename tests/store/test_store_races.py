"""Races on one search, real clock, short leases: worker threads claim, heartbeat, report (done, failed,
pruned), hand back or abandon trials while a sweeper thread requeues expired leases, extends the search
and (in one variant) cancels it. Afterwards the store's counters must agree with its trials, no trial
may have accepted two reports, and only the errors the contract names may have been raised."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from storekit import assert_backend_consistent, search_doc

from hyperhive.errors import LeaseLost
from hyperhive.models import SearchStatus, TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import Store

LEASE = 0.05


def _worker(
    store: Store, wid: str, seed: int, stop: threading.Event, log: dict[str, Any], actions: list[str]
) -> None:
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            t = store.claim(wid, LEASE)
            if t is None:
                time.sleep(0.002)
                continue
            if t.state.is_final:
                continue
            assert t.state == TrialState.RUNNING and t.lease_token and t.config is not None
            token = t.lease_token
            for epoch in range(rng.randint(0, 2)):
                time.sleep(rng.random() * LEASE)  # sometimes past the lease: the sweep may requeue it
                store.heartbeat(t.id, token, LEASE, [{"epoch": epoch + 1, "loss": rng.random()}])
            action = rng.choice(actions)
            if rng.random() < 0.3:
                time.sleep(LEASE * rng.uniform(0.8, 1.5))  # report around the expiry: races the sweep
            try:
                if action == "release":
                    store.release(t.id, token)
                elif action != "abandon":
                    result = {
                        "done": TrialResult.done({"loss": rng.random()}),
                        "failed": TrialResult.failed("boom"),
                        "pruned": TrialResult(state=TrialState.PRUNED, history=[{"epoch": 1, "loss": 0.5}]),
                    }[action]
                    got = store.report(t.id, token, result)
                    with log["lock"]:
                        log["accepted"].append((t.id, token, got.state))
            except LeaseLost:
                with log["lock"]:
                    log["lost"] += 1
    except BaseException as exc:
        log["errors"].append(exc)


def _sweeper(
    store: Store, search_id: str, seed: int, stop: threading.Event, log: dict[str, Any], cancel: bool
) -> None:
    rng = random.Random(seed)
    extends = 0
    try:
        while not stop.is_set():
            store.requeue_expired()
            r = rng.random()
            if r < 0.05 and extends < 6:
                store.extend_search(search_id, 1)  # also reopens a completed or failed search
                extends += 1
            elif cancel and r < 0.06:
                store.cancel_search(search_id)
            time.sleep(0.003)
    except BaseException as exc:
        log["errors"].append(exc)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"k": 50, "cancel": False, "failed": 1}, id="plain"),
        pytest.param({"k": 2, "cancel": False, "failed": 4}, id="failure-streaks"),
        pytest.param({"k": 50, "cancel": True, "failed": 1}, id="cancel"),
    ],
)
def test_threads_racing_on_one_search_keep_the_invariants(store: Store, variant: dict[str, Any]) -> None:
    objective = {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"}
    doc = search_doc(max_trials=12, max_retries=1, max_consecutive_failures=variant["k"], objective=objective)
    s = store.create_search(validate(doc))
    stop = threading.Event()
    log: dict[str, Any] = {"lock": threading.Lock(), "accepted": [], "lost": 0, "errors": []}
    actions = ["done", "done", "done", "pruned", "release", "abandon"] + ["failed"] * variant["failed"]
    threads = [
        threading.Thread(target=_worker, args=(store, f"w{i}", i, stop, log, actions)) for i in range(4)
    ] + [threading.Thread(target=_sweeper, args=(store, s.id, 99, stop, log, variant["cancel"]))]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and not store.get_search(s.id).status.is_final:
        time.sleep(0.02)
    stop.set()
    for th in threads:
        th.join(timeout=30)
    assert not log["errors"], log["errors"]
    time.sleep(LEASE * 2)  # every abandoned lease expires ...
    store.requeue_expired()  # ... and is swept
    repair = getattr(store, "repair", None)
    if repair is not None:
        repair(grace=0)

    final = store.get_search(s.id)
    trials = store.list_trials(s.id)
    c = final.counts
    assert [t.number for t in trials] == list(range(len(trials))), "no slot lost or taken twice"
    assert c.total == len(trials) <= final.max_trials
    for state in TrialState:
        assert getattr(c, state.value) == sum(1 for t in trials if t.state == state), state
    assert c.running == 0, "every lease expired and was swept"
    if final.status == SearchStatus.COMPLETED:
        assert c.finished == final.max_trials
    if final.status.is_final:
        assert c.queued == 0
    else:
        assert c.finished < final.max_trials
    done = [t for t in trials if t.state == TrialState.DONE]
    if done:
        best = min(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]
        assert final.best_value == best.value
    else:
        assert final.best_trial_id is None
    by_trial: dict[str, list[str]] = {}
    for tid, token, state in log["accepted"]:
        by_trial.setdefault(tid, []).append(token)
        assert store.get_trial(tid).state == state, "an accepted report is what the trial holds"
    assert all(len(tokens) == 1 for tokens in by_trial.values()), "a trial accepted two reports"
    assert all(t.lease_token is None for t in trials if t.state.is_final)
    assert_backend_consistent(store, s.id)


def _process_worker(path: str, wid: str, seed: int, seconds: float, queue: Any) -> None:
    from hyperhive.store import SQLiteStore

    store = SQLiteStore(path)
    stop = threading.Event()
    log: dict[str, Any] = {"lock": threading.Lock(), "accepted": [], "lost": 0, "errors": []}
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    _worker(store, wid, seed, stop, log, ["done", "done", "failed", "pruned", "release", "abandon"])
    store.close()
    queue.put(([(t, tok, str(st)) for t, tok, st in log["accepted"]], [repr(e) for e in log["errors"]]))


def test_sqlite_processes_racing_the_sweep_extend_and_cancel(tmp_path: Any) -> None:
    """The same races across processes sharing one SQLite file (the parent sweeps, extends, cancels)."""
    import multiprocessing as mp

    from hyperhive.store import SQLiteStore

    path = str(tmp_path / "race.db")
    store = SQLiteStore(path)
    s = store.create_search(validate(search_doc(max_trials=40, max_retries=1, max_consecutive_failures=50)))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(path, f"p{i}", i, 1.5, queue)) for i in range(3)]
    for p in procs:
        p.start()
    rng = random.Random(5)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        store.requeue_expired()
        if rng.random() < 0.02:
            store.extend_search(s.id, 1)
        time.sleep(0.003)
    store.cancel_search(s.id)  # with workers still mid-trial
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert not [e for _, errors in results for e in errors]
    final = store.get_search(s.id)
    trials = store.list_trials(s.id)
    assert [t.number for t in trials] == list(range(len(trials)))
    for state in TrialState:
        assert getattr(final.counts, state.value) == sum(1 for t in trials if t.state == state), state
    assert final.status in (SearchStatus.CANCELLED, SearchStatus.COMPLETED)
    assert final.counts.queued == final.counts.running == 0
    accepted = [a for rs, _ in results for a in rs]
    assert len({tid for tid, _, _ in accepted}) == len(accepted), "a trial accepted two reports"
    for tid, _, state in accepted:
        assert str(store.get_trial(tid).state) == state
    assert len(accepted) >= 5, "the processes did work"
