"""Helpers for the MongoDB store tests: a store on mongomock, or on a real server in a fresh database
(dropped afterwards) whenever ``HYPERHIVE_TEST_MONGO_URL`` is set."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import mongomock

from hyperhive.models import TrialState
from hyperhive.store.mongo import MongoStore
from search_spaces import validate

REAL_URL = os.environ.get("HYPERHIVE_TEST_MONGO_URL")
NO_SERVER = "needs a real MongoDB server: set HYPERHIVE_TEST_MONGO_URL=mongodb://..."


def unique_db() -> str:
    return f"hyperhive_test_{uuid.uuid4().hex[:10]}"


def make_mongo_store(**kw: Any) -> tuple[MongoStore, Callable[[], None]]:
    """A fresh MongoStore and its cleanup: a real server when configured, else mongomock."""
    db = unique_db()
    if REAL_URL:
        store = MongoStore(REAL_URL, database=db, **kw)

        def cleanup() -> None:
            store.client.drop_database(db)
            store.close()

        return store, cleanup
    store = MongoStore(f"mongodb://localhost/{db}", client=mongomock.MongoClient(), **kw)
    return store, store.close


def search_spec(**overrides: Any) -> Any:
    """A small validated function-objective search; keyword arguments replace top-level keys."""
    doc: dict[str, Any] = {
        "name": "mongo-test",
        "algorithm": "random",
        "max_trials": 4,
        "seed": 7,
        "objective": {"function": "search_spaces.objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {"x": {"uniform": [0, 1]}, "kind": {"choice": ["a", "b"]}},
    }
    doc.update(overrides)
    return validate({k: v for k, v in doc.items() if v is not None})


class FakeClock:
    """A settable clock: tests move time instead of sleeping through leases."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def assert_consistent(store: MongoStore, search_id: str) -> None:
    """The search's counters equal what its trials say, and nothing is left half-done."""
    doc = store._searches.find_one({"_id": search_id})
    trials = list(store._trials.find({"search_id": search_id}))
    by_state = Counter(t["state"] for t in trials)
    assert doc["counts"] == {s: by_state.get(s, 0) for s in doc["counts"]}
    assert doc["slots_taken"] == len(trials) == doc["max_trials"] - doc["slots_left"]
    finished = sum(by_state[str(s)] for s in TrialState if s.is_final)
    assert doc["unfinished"] == doc["max_trials"] - finished
    assert sorted(t["number"] for t in trials) == list(range(len(trials))), "no slot lost or doubled"
    assert doc["pending_slots"] == [] and all(t["pending"] == [] for t in trials)
