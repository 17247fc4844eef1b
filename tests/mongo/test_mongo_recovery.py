"""A process that dies between the two steps of a change loses nothing: the repair sweep finishes the
change, once, and the search's counters always end equal to its trials (see hyperhive/store/mongo.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mongokit import FakeClock, assert_consistent, search_spec

from hyperhive.models import SearchStatus, TrialResult, TrialState
from hyperhive.store.mongo import MongoStore


class Crash(RuntimeError):
    """The process died here."""


def crash_once(monkeypatch: pytest.MonkeyPatch, store: MongoStore, name: str, *, after: bool = False) -> None:
    """Make ``store.<name>`` die on its next call (before doing anything, or right after it ran)."""
    original: Callable[..., Any] = getattr(store, name)
    state = {"armed": True}

    def dying(*args: Any, **kwargs: Any) -> Any:
        if not state["armed"]:
            return original(*args, **kwargs)
        state["armed"] = False
        if after:
            original(*args, **kwargs)
        raise Crash(name)

    monkeypatch.setattr(store, name, dying)


def finish_all(store: MongoStore, clock: FakeClock, value: float = 0.5) -> None:
    while (t := store.claim("finisher", 30)) is not None:
        assert t.lease_token and t.config is not None
        store.report(t.id, t.lease_token, TrialResult.done({"loss": value}))
        value += 0.1


def test_claimer_dying_after_taking_a_slot_loses_no_slot(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=3))
    crash_once(monkeypatch, mstore, "_insert_slot_trial")
    with pytest.raises(Crash):
        mstore.claim("doomed", 30)
    doc = mstore._searches.find_one({"_id": s.id})
    assert doc["slots_taken"] == 1 and len(doc["pending_slots"]) == 1 and mstore.count_trials(s.id) == 0
    other = mstore.claim("w", 30)
    assert other is not None and other.number == 1, "a live claimer takes the next slot meanwhile"
    assert mstore.repair() == 0, "not before the grace period"
    mclock.advance(mstore.repair_grace + 1)
    assert mstore.repair() == 1
    orphan = mstore._trials.find_one({"search_id": s.id, "number": 0})
    assert orphan["state"] == "running" and orphan["worker_id"] == "doomed" and orphan["config"] is None
    mclock.advance(30)  # its lease expires: requeued, then suggested by the next claimer
    assert other.lease_token
    mstore.report(other.id, other.lease_token, TrialResult.done({"loss": 0.2}))
    finish_all(mstore, mclock)
    final = mstore.get_search(s.id)
    assert final.status == SearchStatus.COMPLETED and final.counts.done == 3
    assert mstore.get_trial(orphan["_id"]).attempts == 2
    assert_consistent(mstore, s.id)


def test_a_slow_claimer_and_the_sweep_insert_the_same_trial_once(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=2))
    slots: list[dict[str, Any]] = []
    original = mstore._insert_slot_trial

    def stalled(search_id: str, seed: int, slot: dict[str, Any], **kw: Any) -> Any:
        slots.append(slot)
        raise Crash("stalled")

    monkeypatch.setattr(mstore, "_insert_slot_trial", stalled)
    with pytest.raises(Crash):
        mstore._claim_new_slot("slow", 60, mclock(), None)
    monkeypatch.setattr(mstore, "_insert_slot_trial", original)
    mclock.advance(mstore.repair_grace + 1)
    assert mstore.repair() == 1  # the sweep inserts the trial first
    late = mstore._insert_slot_trial(s.id, s.seed, slots[0])  # then the slow claimer wakes up
    assert (
        late is not None and late.id == slots[0]["trial_id"] and late.lease_token == slots[0]["lease_token"]
    )
    assert mstore.count_trials(s.id) == 1
    assert_consistent(mstore, s.id)


def test_report_dying_before_the_counters_is_finished_by_the_sweep(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=1))
    t = mstore.claim("w", 30)
    assert t and t.lease_token
    crash_once(monkeypatch, mstore, "_apply_op")
    with pytest.raises(Crash):
        mstore.report(t.id, t.lease_token, TrialResult.done({"loss": 0.3}))
    assert mstore.get_trial(t.id).state == TrialState.DONE
    assert mstore.get_search(s.id).counts.running == 1, "the counters were not moved yet"
    again = mstore.report(t.id, t.lease_token, TrialResult.done({"loss": 0.3}))
    assert again.state == TrialState.DONE, "the worker's retry is answered as already accepted"
    mclock.advance(mstore.repair_grace + 1)
    assert mstore.repair() >= 1
    done = mstore.get_search(s.id)
    assert done.counts.done == 1 and done.counts.running == 0 and done.best_trial_id == t.id
    assert done.status == SearchStatus.COMPLETED
    assert_consistent(mstore, s.id)
    mstore.repair(grace=-1)
    assert mstore.get_search(s.id).counts.done == 1, "a second sweep changes nothing"


def test_dying_after_the_counters_never_counts_twice(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=2))
    t = mstore.claim("w", 30)
    assert t and t.lease_token
    crash_once(monkeypatch, mstore, "_settle")  # counters moved, best/completion and cleanup not done
    with pytest.raises(Crash):
        mstore.report(t.id, t.lease_token, TrialResult.done({"loss": 0.3}))
    mid = mstore.get_search(s.id)
    assert mid.counts.done == 1 and mid.best_trial_id is None
    [pending] = mstore._trials.find_one({"_id": t.id})["pending"]
    mstore._apply_op(s.id, t.id, pending)  # two sweepers replaying the same op
    mstore._apply_op(s.id, t.id, pending)
    fixed = mstore.get_search(s.id)
    assert fixed.counts.done == 1 and fixed.counts.running == 0 and fixed.best_trial_id == t.id
    assert_consistent(mstore, s.id)


def test_cancel_interrupted_half_way_is_completed_by_the_sweep(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=4))
    claimed = [mstore.claim("w", 30) for _ in range(3)]
    assert all(claimed)
    crash_once(monkeypatch, mstore, "_cancel_open_trials")
    with pytest.raises(Crash):
        mstore.cancel_search(s.id)
    assert mstore.get_search(s.id).status == SearchStatus.CANCELLED
    t = claimed[0]
    assert t is not None and t.lease_token
    hb = mstore.heartbeat(t.id, t.lease_token, 30)
    assert hb.should_stop and hb.reason == "cancelled", "a worker hears of it at its next heartbeat"
    assert mstore.claim("w") is None
    mstore.repair()
    final = mstore.get_search(s.id)
    assert final.counts.cancelled == 3 and final.counts.running == 0
    assert_consistent(mstore, s.id)


def test_failed_search_whose_cancellation_died_is_cleaned_up(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=5, max_consecutive_failures=1))
    bystander = mstore.claim("w", 30)
    t = mstore.claim("w", 30)
    assert bystander and t and t.lease_token
    crash_once(monkeypatch, mstore, "_cancel_open_trials")
    with pytest.raises(Crash):
        mstore.report(t.id, t.lease_token, TrialResult.failed("boom"))
    assert mstore.get_search(s.id).status == SearchStatus.FAILED
    mclock.advance(mstore.repair_grace + 1)
    mstore.repair()
    assert mstore.get_trial(bystander.id).state == TrialState.CANCELLED
    assert "boom" in (mstore.get_search(s.id).error or "")
    assert_consistent(mstore, s.id)


def test_requeue_dying_midway_is_replayed(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=1, max_retries=3))
    t = mstore.claim("w", 5)
    assert t is not None
    mclock.advance(6)
    crash_once(monkeypatch, mstore, "_apply_op")
    with pytest.raises(Crash):
        mstore._requeue_one(
            mstore._trials.find_one({"_id": t.id}), {"status": "running", "max_retries": 3}, mclock()
        )
    assert mstore.get_trial(t.id).state == TrialState.QUEUED
    mclock.advance(mstore.repair_grace + 1)
    mstore.repair()
    assert mstore.get_search(s.id).counts.queued == 1
    finish_all(mstore, mclock)
    assert mstore.get_search(s.id).status == SearchStatus.COMPLETED
    assert_consistent(mstore, s.id)


def test_sweep_does_not_complete_a_search_whose_last_failure_is_still_settling(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last slot's trial fails as the K-th in a row: the search must end ``failed`` (as on SQLite).
    A sweep running between the report's counter update and its follow-ups (here: the reporter died
    there) saw ``unfinished == 0`` and marked the search ``completed`` before the failure step ran."""
    s = mstore.create_search(search_spec(max_trials=1, max_consecutive_failures=1))
    t = mstore.claim("w", 30)
    assert t and t.lease_token
    crash_once(monkeypatch, mstore, "_settle")
    with pytest.raises(Crash):
        mstore.report(t.id, t.lease_token, TrialResult.failed("boom"))
    mstore.repair()  # within the grace period: the op is left to its owner, so is the status
    assert mstore.get_search(s.id).status == SearchStatus.RUNNING
    mclock.advance(mstore.repair_grace + 1)
    mstore.repair()
    final = mstore.get_search(s.id)
    assert final.status == SearchStatus.FAILED and final.error and "boom" in final.error
    assert_consistent(mstore, s.id)
