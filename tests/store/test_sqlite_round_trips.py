"""What one trial costs the SQLite store in write transactions (each one a WAL commit and a turn of
the write lock every worker shares): a claim of a new slot is one (slot, suggestion and the worker's
row together), a report one (reads, outcome and the search's settlement together)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hyperhive.search_spaces import validate
from storekit import search_doc

from hyperhive.models import TrialResult, WorkerInfo
from hyperhive.store import SQLiteStore


def counting(store: SQLiteStore) -> list[int]:
    """Counts the store's write transactions from now on (``[n]``)."""
    count = [0]
    real = store._write

    @contextmanager
    def write() -> Iterator[Any]:
        count[0] += 1
        with real() as conn:
            yield conn

    store._write = write  # type: ignore[method-assign]
    return count


def test_a_trial_costs_one_write_to_claim_and_one_to_report(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    for name, algorithm in (("random", "random"), ("tpe", {"type": "tpe", "n_startup_trials": 2})):
        s = store.create_search(validate(search_doc(algorithm=algorithm, max_trials=4, name=name)))
        store.register_worker(WorkerInfo(id="w", host="h", pid=1, started_at=0, last_seen=0))
        writes = counting(store)
        for i in range(4):
            t = store.claim("w", 30, search_id=s.id)
            assert t is not None and t.config is not None and t.lease_token
            assert writes[0] == 2 * i + 1, f"{algorithm}: claim {i} took more than one write"
            assert store.list_workers()[0].current_trial_id == t.id
            store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.1 * i}))
            assert writes[0] == 2 * i + 2, f"{algorithm}: report {i} took more than one write"
        assert store.get_search(s.id).counts.done == 4
        del store._write  # the class's again
    store.close()
