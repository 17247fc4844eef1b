"""What the test suites (and anyone testing code against Hyperhive) share: a settable clock, stores of
each backend, a small search document, and the MongoDB store's bookkeeping check.

Nothing here runs in production; ``mongomock`` (a dev dependency) is imported only when a MongoDB test
store is asked for without a server.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperhive.models import TrialState

if TYPE_CHECKING:
    from hyperhive.store.base import Store
    from hyperhive.store.mongo import MongoStore

MONGO_URL_VARIABLE = "HYPERHIVE_TEST_MONGO_URL"
"""When set (``mongodb://...``), MongoDB test stores live on that server, in fresh databases."""


class FakeClock:
    """A settable clock: tests move time forward instead of sleeping through leases."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sqlite_test_store(folder: Path) -> tuple[Store, Callable[[], None]]:
    """A SQLite store in a real file in ``folder``, and its cleanup."""
    from hyperhive.store.sqlite import SQLiteStore

    store = SQLiteStore(Path(folder) / "store.db")
    return store, store.close


def fresh_database_name() -> str:
    """A database name no other test uses."""
    return f"hyperhive_test_{uuid.uuid4().hex[:10]}"


def mongo_test_store(**kw: Any) -> tuple[MongoStore, Callable[[], None]]:
    """A MongoDB store in a fresh database, and its cleanup: on the server
    ``HYPERHIVE_TEST_MONGO_URL`` names (the database dropped afterwards), else on mongomock."""
    from hyperhive.store.mongo import MongoStore

    db = fresh_database_name()
    url = os.environ.get(MONGO_URL_VARIABLE)
    if url:
        store = MongoStore(url, database=db, **kw)

        def cleanup() -> None:
            store.client.drop_database(db)
            store.close()

        return store, cleanup
    import mongomock

    store = MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient(), **kw)
    return store, store.close


def search_document(**overrides: Any) -> dict[str, Any]:
    """A small function-objective search document (4 trials, no Keras); keyword arguments replace
    top-level keys, ``None`` removes one."""
    doc: dict[str, Any] = {
        "name": "contract",
        "algorithm": "random",
        "max_trials": 4,
        "seed": 11,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "loss",
            "mode": "min",
        },
        "params": {"x": {"uniform": [0, 1]}, "kind": {"choice": ["a", "b"]}},
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def assert_mongo_consistent(store: MongoStore, search_id: str) -> None:
    """The MongoDB search document's counters and budget fields agree with its trials, no slot is lost
    or doubled, and nothing is left half-done (pending slots, unapplied ops)."""
    doc = store._searches.find_one({"_id": search_id})
    trials = list(store._trials.find({"search_id": search_id}))
    by_state = Counter(t["state"] for t in trials)
    assert doc["counts"] == {s: by_state.get(s, 0) for s in doc["counts"]}
    assert doc["slots_taken"] == len(trials) == doc["max_trials"] - doc["slots_left"]
    finished = sum(by_state[str(s)] for s in TrialState if s.is_final)
    assert doc["unfinished"] == doc["max_trials"] - finished
    assert sorted(t["number"] for t in trials) == list(range(len(trials))), "no slot lost or doubled"
    assert doc["pending_slots"] == [] and all(t["pending"] == [] for t in trials)
