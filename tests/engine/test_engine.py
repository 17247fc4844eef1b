"""Suggestions through the store: reproducible seeds, incremental history, TPE beating random."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from hyperhive import demo_objectives as objectives
from hyperhive.engine import Engine, trial_to_doc
from hyperhive.models import TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store


def branin_doc(algorithm: Any, max_trials: int, seed: int) -> dict[str, Any]:
    return {
        "name": "branin",
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": seed,
        "objective": {
            "function": "hyperhive.demo_objectives:branin",
            "metric": "loss",
            "mode": "min",
        },
        "params": {"x": {"uniform": [-5, 10]}, "y": {"uniform": [0, 15]}},
    }


def run_search(store: Store, doc: dict[str, Any]) -> float:
    """Run a whole function-objective search in this process; return the best loss."""
    search = store.create_search(validate(doc))
    while (t := store.claim("w", 30)) is not None:
        assert t.lease_token and t.config
        store.report(t.id, t.lease_token, TrialResult.done({"loss": objectives.branin(t.config["params"])}))
    final = store.get_search(search.id)
    assert final.counts.done == doc["max_trials"]
    assert final.best_value is not None
    return final.best_value


def test_same_seed_same_configs(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    doc = branin_doc({"type": "tpe", "n_startup_trials": 3}, 8, seed=5)
    run_search(a, doc)
    run_search(b, doc)
    [sa], [sb] = a.list_searches(), b.list_searches()
    ca = [t.config for t in a.list_trials(sa.id)]
    cb = [t.config for t in b.list_trials(sb.id)]
    assert ca == cb and len({str(c) for c in ca}) == 8


def quadratic_doc(algorithm: Any, max_trials: int, seed: int) -> dict[str, Any]:
    return {
        "name": "quadratic",
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": seed,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "loss",
            "mode": "min",
        },
        "params": {f"p{i}": {"uniform": [-1, 1]} for i in range(4)},
    }


def run_quadratic(store: Store, doc: dict[str, Any]) -> float:
    search = store.create_search(validate(doc))
    while (t := store.claim("w", 30)) is not None:
        assert t.lease_token and t.config
        loss = objectives.quadratic(t.config["params"])
        store.report(t.id, t.lease_token, TrialResult.done({"loss": loss}))
    best = store.get_search(search.id).best_value
    assert best is not None
    return best


def test_tpe_beats_random_on_a_known_function_over_seeds(tmp_path: Path) -> None:
    """4-D quadratic bowl (minimum 0 at 0.3): with the same budget and seeds, TPE through the store
    ends far closer to the minimum than random search. Both share their 10 random start-up trials."""
    store = SQLiteStore(tmp_path / "s.db")
    seeds = range(6)
    tpe_best = [
        run_quadratic(store, quadratic_doc({"type": "tpe", "n_startup_trials": 10}, 40, s)) for s in seeds
    ]
    rand_best = [run_quadratic(store, quadratic_doc("random", 40, s)) for s in seeds]
    assert statistics.median(tpe_best) < 0.5 * statistics.median(rand_best)
    assert sum(t <= r for t, r in zip(tpe_best, rand_best, strict=True)) >= 5


def test_history_refreshes_only_changed_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    search = store.create_search(validate(branin_doc("tpe", 30, 1)))
    for _ in range(10):
        t = store.claim("w", 30)
        assert t and t.lease_token and t.config
        store.report(t.id, t.lease_token, TrialResult.done({"loss": objectives.branin(t.config["params"])}))
    engine = Engine()
    fetched: list[int] = []
    real = store.trials_changed_since

    def counting(search_id: str, cursor: Any) -> Any:
        trials, cursor = real(search_id, cursor)
        fetched.append(len(trials))
        return trials, cursor

    search = store.get_search(search.id)
    monkeypatch.setattr(store, "trials_changed_since", counting)
    first = engine.history(store, search)
    assert len(first.trials) == 10 and fetched == [10]
    running = store.claim("w2", 30)  # made by the store's own engine
    assert running is not None
    fetched.clear()
    second = engine.history(store, search)
    assert fetched == [1], "only the new trial is read"
    assert len(second.trials) == 11 and second.losses().count(None) == 1, "the running trial is pending"
    assert running.lease_token
    store.report(running.id, running.lease_token, TrialResult.done({"loss": 0.5}))
    third = engine.history(store, search)
    assert fetched == [1, 1] and sorted(x for x in third.losses() if x is not None)[0] <= 0.5


def test_trial_docs_follow_states(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.create_search(validate(branin_doc("random", 3, 1)))
    t = store.claim("w", 30)
    assert t and t.lease_token
    doc = trial_to_doc(t)
    assert doc is not None and doc["result"]["status"] == "new" and doc["misc"]["tid"] == t.number
    done = store.report(t.id, t.lease_token, TrialResult.done({"loss": 1.5}))
    doc = trial_to_doc(done)
    assert doc is not None and doc["result"] == {"status": "ok", "loss": 1.5}
    failed_t = store.claim("w", 30)
    assert failed_t and failed_t.lease_token
    failed = store.report(failed_t.id, failed_t.lease_token, TrialResult.failed("x"))
    assert failed.state == TrialState.FAILED and trial_to_doc(failed)["result"]["status"] == "fail"  # type: ignore[index]
