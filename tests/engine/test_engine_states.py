"""Every algorithm suggests from a history holding every trial state (done, failed, pruned with and
without a value, cancelled, queued, running, config-less), on both store backends, and suggests the
same thing again from the same history and seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperhive.models import TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store

ALGORITHMS = [
    "random",
    "anneal",
    {"type": "tpe", "n_startup_trials": 2},
    {"type": "tpe", "n_startup_trials": 20},  # still in its random start-up
]


def _store(backend: str, path: Path) -> Store:
    if backend == "sqlite":
        return SQLiteStore(path / "s.db")
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    return MongoStore("mongodb://localhost/engine", client=mongomock.MongoClient())


def _doc(algorithm: Any, mode: str) -> dict[str, Any]:
    return {
        "name": "states",
        "algorithm": algorithm,
        "max_trials": 20,
        "seed": 3,
        "max_consecutive_failures": 50,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "score",
            "mode": mode,
        },
        "params": {
            "x": {"uniform": [0, 1]},
            "n": {"quniform": [1, 9, 1]},
            "kind": {"choice": ["a", {"nested": {"loguniform": [0.001, 1]}}]},
        },
    }


def _every_state(store: Store, algorithm: Any, mode: str) -> tuple[str, list[Any]]:
    """A search whose history holds every state; returns its id and the configs suggested."""
    s = store.create_search(validate(_doc(algorithm, mode)))
    configs = []

    def claim() -> Any:
        t = store.claim("w", 30)
        assert t is not None and t.state == TrialState.RUNNING, t
        assert t.lease_token and t.config is not None
        configs.append(t.config)
        return t

    for v in (0.3, 0.1, 0.7):
        t = claim()
        store.report(t.id, t.lease_token, TrialResult.done({"score": v}))
    t = claim()
    store.report(t.id, t.lease_token, TrialResult.failed("boom"))
    t = claim()
    store.report(t.id, t.lease_token, TrialResult(TrialState.PRUNED, history=[{"epoch": 2, "score": 0.9}]))
    t = claim()
    store.report(t.id, t.lease_token, TrialResult(TrialState.PRUNED))  # pruned without a value
    t = claim()
    store.report(t.id, t.lease_token, TrialResult.done({"other": 1.0}))  # no objective: failed
    queued = claim()
    store.release(queued.id, queued.lease_token)
    claim()  # takes the queued trial back
    claim()  # stays running
    store._claim_new_slot("crashed", 30, store.clock(), s.id)  # config-less, running
    for _ in range(3):
        claim()
    return s.id, configs


@pytest.mark.parametrize("backend", ["sqlite", "mongo"])
@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=["random", "anneal", "tpe", "tpe-startup"])
def test_suggestions_from_every_state_are_valid_and_reproducible(
    backend: str, mode: str, algorithm: Any, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _store(backend, tmp_path / "a"), _store(backend, tmp_path / "b")
    sa, ca = _every_state(a, algorithm, mode)
    _, cb = _every_state(b, algorithm, mode)
    assert ca == cb, "same seed, same history: same suggestions"
    for c in ca:
        p = c["params"]
        assert 0 <= p["x"] <= 1 and p["n"] in range(1, 10)
        assert p["kind"] == "a" or 0.001 <= p["kind"]["nested"] <= 1
    states = {t.state for t in a.list_trials(sa)}
    assert {TrialState.DONE, TrialState.FAILED, TrialState.PRUNED, TrialState.RUNNING} <= states
    a.cancel_search(sa)  # cancelled trials in the history too
    history = a.engine.history(a, a.get_search(sa))
    losses = sorted(x for x in history.losses() if x is not None)
    want = sorted(v if mode == "min" else -v for v in (0.3, 0.1, 0.7, 0.9))
    assert losses == want and len(history.trials) == 4, "done trials and the pruned one with a value"
