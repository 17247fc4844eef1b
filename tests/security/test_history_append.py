"""Issue 8, item 12: a trial's per-epoch history is appended, not rewritten at every epoch.

What one heartbeat writes must not grow with the number of epochs already stored (before: the whole
history was rewritten, so a long training wrote quadratically many bytes), on both backends; a resent
batch is not duplicated; the history reads back whole; the worker sends each epoch once.
"""

from __future__ import annotations

import statistics
import uuid
from pathlib import Path
from typing import Any

import bson
import pytest

from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store
from hyperhive.workers.daemon import Heartbeat
from hyperhive.workers.execution import TrialControl

DOC = {
    "name": "long-training",
    "algorithm": "random",
    "max_trials": 2,
    "seed": 1,
    "objective": {
        "function": "hyperhive.demo_objectives:quadratic",
        "metric": "loss",
        "mode": "min",
    },
    "params": {"x": {"uniform": [0, 1]}},
}
EPOCHS = 300


def epoch(i: int) -> dict[str, Any]:
    """One epoch's row, about 400 bytes of JSON (a few dozen metrics, as per-class scores make)."""
    return {"epoch": i + 1, **{f"metric_{m}": 1.0 / (i + m + 1) for m in range(20)}}


def running_trial(store: Store) -> Any:
    store.create_search(validate(DOC), owner="alice")
    trial = store.claim("w", 600)
    assert trial is not None and trial.lease_token
    return trial


def mongo_store() -> Store:
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    db = f"hh_{uuid.uuid4().hex[:8]}"
    return MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient())


def wal_bytes_per_heartbeat(store: SQLiteStore, wal: Path, append: bool) -> tuple[float, float]:
    """Median WAL bytes one epoch's heartbeat writes around epoch 10 and around epoch EPOCHS."""
    conn = store._conn()
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the WAL only grows: its growth is what was written
    trial = running_trial(store)
    history: list[dict[str, Any]] = []
    written = []
    for i in range(EPOCHS):
        history.append(epoch(i))
        before = wal.stat().st_size
        if append:
            store.heartbeat(trial.id, trial.lease_token, 600, new_epochs=[history[-1]], from_epoch=i)
        else:
            store.heartbeat(trial.id, trial.lease_token, 600, list(history))
        written.append(wal.stat().st_size - before)
    assert store.get_trial(trial.id).history == history
    return statistics.median(written[10:30]), statistics.median(written[-20:])


def test_sqlite_bytes_written_per_epoch_do_not_grow(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "append.db")
    early, late = wal_bytes_per_heartbeat(store, Path(f"{tmp_path / 'append.db'}-wal"), append=True)
    store.close()
    old = SQLiteStore(tmp_path / "whole.db")
    _, late_whole = wal_bytes_per_heartbeat(old, Path(f"{tmp_path / 'whole.db'}-wal"), append=False)
    old.close()
    assert late <= 1.5 * early, f"an epoch's heartbeat wrote {early} bytes at epoch ~20, {late} at ~{EPOCHS}"
    assert late_whole > 10 * late, "the measure sees a rewrite of the whole history"


class UpdateSizes:
    """Wraps the trials collection of a MongoStore and records the BSON size of every update sent."""

    def __init__(self, coll: Any) -> None:
        self._coll = coll
        self.sizes: list[int] = []

    def find_one_and_update(self, flt: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        self.sizes.append(len(bson.encode(update)))
        return self._coll.find_one_and_update(flt, update, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._coll, name)


def test_mongo_update_per_epoch_does_not_grow_and_history_reads_whole() -> None:
    store: Any = mongo_store()
    trial = running_trial(store)
    spy = UpdateSizes(store._trials)
    store._trials = spy
    history = []
    for i in range(EPOCHS):
        history.append(epoch(i))
        store.heartbeat(trial.id, trial.lease_token, 600, new_epochs=[history[-1]], from_epoch=i)
    assert len(spy.sizes) == EPOCHS
    early, late = statistics.median(spy.sizes[10:30]), statistics.median(spy.sizes[-20:])
    assert late <= 1.2 * early, f"an epoch's update was {early} bytes at epoch ~20, {late} at ~{EPOCHS}"
    store.heartbeat(trial.id, trial.lease_token, 600, new_epochs=history[-3:], from_epoch=EPOCHS - 3)
    got = store.get_trial(trial.id).history
    assert got == history, "the whole history reads back, the resent epochs once"
    store._trials = spy._coll
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "mongo"])
def test_worker_sends_each_epoch_once_and_resends_after_a_failed_heartbeat(
    backend: str, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "hh.db") if backend == "sqlite" else mongo_store()
    trial = running_trial(store)
    sent: list[tuple[int, int]] = []
    failures = {3}  # the 4th epoch's heartbeat fails on the way (store unreachable)

    class Spy:
        def heartbeat(self, trial_id: str, token: str, lease: float, history: Any = None, **kw: Any) -> Any:
            if kw:
                sent.append((kw["from_epoch"], len(kw["new_epochs"])))
                if len(sent) - 1 in failures:
                    raise ConnectionError("store unreachable")
            return store.heartbeat(trial_id, token, lease, history, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    beat = Heartbeat(Spy(), trial, TrialControl(), lease_seconds=60, interval=10)  # type: ignore[arg-type]
    history: list[dict[str, Any]] = []
    for i in range(6):
        history.append(epoch(i))
        assert beat.on_epoch(list(history)) is False
    assert sent == [(0, 1), (1, 1), (2, 1), (3, 1), (3, 2), (5, 1)], "unacknowledged epochs are resent"
    assert store.get_trial(trial.id).history == history
    store.close()


def test_mongo_history_written_whole_by_an_older_version_is_converted_on_append() -> None:
    import json

    store: Any = mongo_store()
    trial = running_trial(store)
    old = [epoch(0), epoch(1)]
    store._trials.update_one({"_id": trial.id}, {"$set": {"history": json.dumps(old)}})  # the old layout
    assert store.get_trial(trial.id).history == old
    store.heartbeat(trial.id, trial.lease_token, 600, new_epochs=[epoch(2)], from_epoch=2)
    assert store.get_trial(trial.id).history == [*old, epoch(2)]
    assert isinstance(store._trials.find_one({"_id": trial.id})["history"], list)
    with pytest.raises(ValueError, match="from_epoch: 9"):
        store.heartbeat(trial.id, trial.lease_token, 600, new_epochs=[epoch(9)], from_epoch=9)
    store.close()
