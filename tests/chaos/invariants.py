"""What a search's stored state must satisfy whatever happened to the processes writing it: the counters
agree with the trials, numbers are unique and dense, the best is the best done trial, nothing is left
half-claimed. The same checks as the invariant of tests/store/test_store_stateful.py, minus the model
(here there is no model: the workers and the killer are real processes)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from hyperhive.models import SearchStatus, Trial, TrialState
from hyperhive.store.base import Store


def assert_search_consistent(store: Store, search_id: str) -> list[Trial]:
    """The search's counters, status and best agree with its trials; returns the trials (by number)."""
    got = store.get_search(search_id)
    trials = store.list_trials(search_id)
    c = got.counts
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers), f"a trial number twice: {sorted(numbers)}"
    assert sorted(numbers) == list(range(len(trials))), "numbers are 0..n-1"
    assert c.total == len(trials) <= got.max_trials, (c, len(trials), got.max_trials)
    for state in TrialState:
        n = sum(1 for t in trials if t.state == state)
        assert getattr(c, state.value) == n, f"counts.{state.value}={getattr(c, state.value)} but {n} trials"
    if got.status == SearchStatus.COMPLETED:
        assert c.finished == got.max_trials and c.done >= 1, c
    if got.status in (SearchStatus.PENDING, SearchStatus.RUNNING):
        assert c.finished < got.max_trials, "a runnable search has unfinished slots"
    if got.status.is_final:
        assert c.queued == c.running == 0, "a final search has no open trials"
    for t in trials:
        assert (t.state == TrialState.RUNNING) == (t.lease_token is not None), t
    done = [t for t in trials if t.state == TrialState.DONE]
    if done:
        values = [t.value for t in done if t.value is not None]
        pick = min if got.objective_mode == "min" else max
        assert got.best_value == pick(values) and math.isfinite(got.best_value), (got.best_value, values)
        best = next(t for t in trials if t.id == got.best_trial_id)
        assert best.state == TrialState.DONE and best.value == got.best_value
    else:
        assert got.best_trial_id is None
    return sorted(trials, key=lambda t: t.number)


def sqlite_integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file, read on a fresh connection ("ok" when sound)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()
