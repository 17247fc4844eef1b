"""What one trial costs the SQLite store in write transactions (each one a WAL commit and a turn of
the write lock every worker shares): a claim of a new slot is one (slot, suggestion and the worker's
row together), a report one (reads, outcome and the search's settlement together)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from storekit import search_doc

from hyperhive.models import TrialResult, WorkerInfo
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore
from hyperhive.store import sqlite as sqlite_module


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


def _steal_next_slot(store: SQLiteStore, stolen: list[Any]) -> None:
    """The next suggestion first lets another claimer take the slot it is being made for."""
    real = store.engine.suggest

    def hooked(st: Any, search: Any, trial: Any) -> Any:
        store.engine.suggest = real  # type: ignore[method-assign]
        stolen.append(store.claim("other", 30))
        return real(st, search, trial)

    store.engine.suggest = hooked  # type: ignore[method-assign]


@pytest.mark.parametrize("cheap", [True, False])
def test_a_slot_lost_mid_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap: bool) -> None:
    """A cheap suggestion whose slot another claimer took is made again for the next slot and saved with
    its trial; an expensive one is not thrown away: the trial is taken without config and suggested for
    (the path of a claimer that crashed before saving its suggestion)."""
    # the hook's claim runs inside the suggestion's timing: say what counts as cheap
    monkeypatch.setattr(sqlite_module, "_CHEAP_PROPOSAL_SECONDS", 60.0 if cheap else 0.0)
    store = SQLiteStore(tmp_path / "hh.db")
    s = store.create_search(validate(search_doc(max_trials=4)))
    stolen: list[Any] = []
    _steal_next_slot(store, stolen)
    writes = counting(store)
    t = store.claim("w", 30)
    [other] = stolen
    assert t is not None and other is not None and (other.number, t.number) == (0, 1)
    assert t.config is not None and t.vals and store.get_trial(t.id).config == t.config
    assert writes[0] == 3, "the other claim; ours: a miss then the next slot, or config-less then saved"
    assert store.get_trial(t.id).version == (0 if cheap else 1), "inserted with its config, or saved after"
    assert store.get_search(s.id).counts.running == 2
    store.close()


def test_a_random_trial_costs_one_write_to_report_and_claim_the_next(tmp_path: Path) -> None:
    """A worker going on to its next trial: the report, the sweep, the claim (a random slot with its
    suggestion) and the worker row in ONE write transaction; a TPE search's suggestion must see the
    report, so its slot is taken config-less in that transaction and the suggestion, made after the
    commit outside the lock, is saved by a second one."""
    store = SQLiteStore(tmp_path / "hh.db")
    store.register_worker(WorkerInfo(id="w", host="h", pid=1, started_at=0, last_seen=0))
    for name, algorithm, per_trial in (
        ("random", "random", 1),
        ("tpe", {"type": "tpe", "n_startup_trials": 2}, 2),
    ):
        s = store.create_search(validate(search_doc(algorithm=algorithm, max_trials=5, name=name)))
        t = store.claim("w", 30, search_id=s.id)
        writes = counting(store)
        for i in range(4):
            assert t is not None and t.lease_token
            _, t = store.report_and_claim(t.id, t.lease_token, TrialResult.done({"loss": 0.1 * i}), "w", 30)
            assert t is not None and t.config is not None and t.number == i + 1
            assert writes[0] == per_trial * (i + 1), f"{name}: report + claim {i} took {writes[0]} writes"
            saved_after = per_trial - 1
            assert store.get_trial(t.id).version == saved_after, "inserted with its config, or saved after"
            assert store.get_trial(t.id).config == t.config
            assert store.list_workers()[0].current_trial_id == t.id
        del store._write  # the class's again
    store.close()
