"""Helpers shared by the store tests (and by other suites that need a store of each backend).

- ``sqlite``: a real SQLite file in the test's tmp_path.
- ``mongo``: MongoStore on mongomock (no MongoDB server can be installed on these machines), or on a
  real server, in a fresh database dropped afterwards, whenever ``HYPERHIVE_TEST_MONGO_URL`` is set.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from hyperhive.store import SQLiteStore, Store

BACKENDS = ["sqlite", "mongo"]


class FakeClock:
    """A settable clock: tests move time forward instead of sleeping through leases."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_store(backend: str, tmp_path: Any) -> tuple[Store, Any]:
    """A fresh store of ``backend`` and a cleanup callable."""
    if backend == "sqlite":
        s: Store = SQLiteStore(tmp_path / "store.db")
        return s, s.close
    mongo = pytest.importorskip("hyperhive.store.mongo", reason="MongoDB store not built yet")
    url = os.environ.get("HYPERHIVE_TEST_MONGO_URL")
    db = f"hyperhive_test_{uuid.uuid4().hex[:10]}"
    if url:
        ms = mongo.MongoStore(url, database=db)

        def cleanup() -> None:
            ms.client.drop_database(db)
            ms.close()

        return ms, cleanup
    mongomock = pytest.importorskip("mongomock")
    ms = mongo.MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient())
    return ms, ms.close


def search_doc(**overrides: Any) -> dict[str, Any]:
    """A small function-objective search document; keyword arguments replace top-level keys."""
    doc: dict[str, Any] = {
        "name": "contract",
        "algorithm": "random",
        "max_trials": 4,
        "seed": 11,
        "objective": {"function": "search_spaces.objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {"x": {"uniform": [0, 1]}, "kind": {"choice": ["a", "b"]}},
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def assert_backend_consistent(store: Store, search_id: str) -> None:
    """Backend-specific bookkeeping agrees with the trials (MongoDB: counters, budget fields, nothing
    left half-done; SQLite keeps no more than the counts the contract checks already read)."""
    if store.__class__.__name__ != "MongoStore":
        return
    from collections import Counter

    raw: Any = store
    doc = raw._searches.find_one({"_id": search_id})
    trials = list(raw._trials.find({"search_id": search_id}))
    by_state = Counter(t["state"] for t in trials)
    assert doc["counts"] == {s: by_state.get(s, 0) for s in doc["counts"]}
    assert doc["slots_taken"] == len(trials) == doc["max_trials"] - doc["slots_left"]
    finished = sum(n for state, n in by_state.items() if state not in ("queued", "running"))
    assert doc["unfinished"] == doc["max_trials"] - finished
    assert doc["pending_slots"] == [] and all(t["pending"] == [] for t in trials)
