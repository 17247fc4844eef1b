"""MongoDB's change feed under interleavings a single-threaded contract test cannot produce: a write
whose change number was taken but not yet stamped when a later write was, a claim interrupted after
taking its slot, a process that died holding a marker, data written before the feed existed; and TPE
on MongoDB reading only the trials that changed (see "Change feed" in hyperhive/store/mongo_protocol.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mongokit import FakeClock, assert_consistent, search_spec

from hyperhive.engine import Engine
from hyperhive.models import TrialResult, TrialState
from hyperhive.store.mongo import MongoStore


class Crash(Exception):
    pass


def read_all(store: MongoStore, search_id: str, cursor: Any) -> tuple[dict[str, TrialState], Any]:
    batch, cursor = store.trials_changed_since(search_id, cursor)
    return {t.id: t.state for t in batch}, cursor


def test_a_stamp_that_lands_after_a_later_one_is_not_skipped(
    mstore: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Report A takes change number n and stalls before stamping it; report B takes n + 1 and stamps
    it. A reader then sees B, but must not move past n: once A's stamp lands, A is read."""
    s = mstore.create_search(search_spec(max_trials=3))
    a, b = mstore.claim("w", 30), mstore.claim("w", 30)
    assert a and b and a.lease_token and b.lease_token
    _, cursor = read_all(mstore, s.id, None)
    stalled: list[Callable[[], None]] = []
    real_stamp = mstore._stamp

    def stall_once(trial_id: str, op_ids: list[str], seq: int | None) -> None:
        if trial_id == a.id and not stalled:
            stalled.append(lambda: real_stamp(trial_id, op_ids, seq))
            return
        real_stamp(trial_id, op_ids, seq)

    monkeypatch.setattr(mstore, "_stamp", stall_once)
    mstore.report(a.id, a.lease_token, TrialResult.done({"loss": 0.4}))
    assert stalled, "A's stamp is held back"
    mstore.report(b.id, b.lease_token, TrialResult.done({"loss": 0.6}))
    changed, cursor = read_all(mstore, s.id, cursor)
    assert changed == {b.id: TrialState.DONE}, "A's op is still on A: its old number is not above the cursor"
    stalled[0]()
    changed, cursor = read_all(mstore, s.id, cursor)
    assert changed == {a.id: TrialState.DONE}, "A's change, read once its number is stamped"
    assert read_all(mstore, s.id, cursor)[0] == {}
    assert_consistent(mstore, s.id)


def test_a_claim_interrupted_after_taking_its_slot_is_read_once_repaired(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=3))
    first = mstore.claim("w", 30)
    assert first is not None
    _, cursor = read_all(mstore, s.id, None)

    def die(*_: Any, **__: Any) -> Any:
        raise Crash

    monkeypatch.setattr(mstore, "_insert_slot_trial", die)
    with pytest.raises(Crash):
        mstore.claim("dies", 30)  # the slot is taken; its trial is not inserted
    monkeypatch.undo()
    later = mstore.claim("w", 30)
    assert later is not None
    changed, cursor = read_all(mstore, s.id, cursor)
    assert changed == {later.id: TrialState.RUNNING}
    mclock.advance(mstore.repair_grace + 1)
    assert mstore.repair() >= 1  # inserts the slot's trial
    changed, cursor = read_all(mstore, s.id, cursor)
    assert list(changed.values()) == [TrialState.RUNNING] and later.id not in changed, "the repaired slot"
    assert read_all(mstore, s.id, cursor)[0] == {}
    assert_consistent(mstore, s.id)


def test_a_marker_left_by_a_dead_process_holds_the_reader_until_the_sweep_stamps_it(
    mstore: MongoStore, mclock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(max_trials=3))
    a, b = mstore.claim("w", 60), mstore.claim("w", 60)
    assert a and b and a.lease_token and b.lease_token
    _, cursor = read_all(mstore, s.id, None)

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    monkeypatch.setattr(mstore, "_stamp", die)
    with pytest.raises(Crash):  # the heartbeat's history is written, its number never stamped
        mstore.heartbeat(a.id, a.lease_token, 60, new_epochs=[{"loss": 0.8}], from_epoch=0)
    monkeypatch.undo()
    mstore.heartbeat(b.id, b.lease_token, 60, new_epochs=[{"loss": 0.7}], from_epoch=0)
    changed, cursor = read_all(mstore, s.id, cursor)
    assert changed == {b.id: TrialState.RUNNING}
    mclock.advance(mstore.repair_grace + 1)
    mstore.repair()
    batch, cursor = mstore.trials_changed_since(s.id, cursor)
    assert [t.id for t in batch] == [a.id] and len(batch[0].history) == 1
    assert_consistent(mstore, s.id)


def test_trials_written_before_the_feed_existed_are_read(mstore: MongoStore) -> None:
    s = mstore.create_search(search_spec(max_trials=4))
    a, b = mstore.claim("w", 60), mstore.claim("w", 60)
    assert a and b and a.lease_token
    mstore._trials.update_many({}, {"$unset": {"seq": ""}})  # as an older version left them
    mstore._searches.update_many({}, {"$unset": {"seq": ""}})
    changed, cursor = read_all(mstore, s.id, None)
    assert changed == {a.id: TrialState.RUNNING, b.id: TrialState.RUNNING}
    mstore.report(a.id, a.lease_token, TrialResult.done({"loss": 0.1}))
    changed, cursor = read_all(mstore, s.id, cursor)
    assert changed == {a.id: TrialState.DONE}
    assert read_all(mstore, s.id, cursor)[0] == {}


def test_tpe_on_mongodb_reads_only_the_trials_that_changed(
    mstore: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = mstore.create_search(search_spec(algorithm="tpe", max_trials=20))
    for _ in range(10):
        t = mstore.claim("w", 30)
        assert t and t.lease_token and t.config
        mstore.report(t.id, t.lease_token, TrialResult.done({"loss": float(t.config["params"]["x"])}))
    read: list[int] = []
    real_find = mstore._find

    def counting(what: str, coll: Any, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        docs = real_find(what, coll, *args, **kw)
        if coll is mstore._trials:
            read.append(len(docs))
        return docs

    monkeypatch.setattr(mstore, "_find", counting)
    engine = Engine()
    search = mstore.get_search(s.id)
    first = engine.history(mstore, search)
    assert len(first.trials) == 10 and sum(read) == 10
    running = mstore.claim("w2", 30)
    assert running is not None and running.lease_token
    read.clear()
    second = engine.history(mstore, search)
    assert sum(read) == 1, "only the new trial's document is read"
    assert len(second.trials) == 11 and second.losses().count(None) == 1
    mstore.report(
        running.id, running.lease_token, TrialResult.done({"loss": -1.0})
    )  # below every x in [0, 1]
    read.clear()
    third = engine.history(mstore, search)
    assert sum(read) == 1 and min(x for x in third.losses() if x is not None) == -1.0
