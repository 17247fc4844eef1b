"""CachedTPE suggests exactly what hyperopt's tpe.suggest suggests, on the same trials and seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from hyperopt import Trials, rand, tpe
from hyperopt.base import STATUS_OK, Domain

from hyperhive.search_spaces import validate
from hyperhive.tpe import CachedTPE


def lecture_space() -> Any:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "search_spaces" / "examples" / "lecture-cnn.yaml"
    return validate(yaml.safe_load(path.read_text())).space


def branin_space() -> Any:
    doc = {
        "name": "b",
        "max_trials": 10,
        "objective": {"function": "hyperhive.demo_objectives:branin"},
        "params": {"x": {"uniform": [-5, 10]}, "y": {"uniform": [0, 15]}, "k": {"randint": [3, 9]}},
    }
    return validate(doc).space


def grow(domain: Domain, trials: Trials, n: int, rng: np.random.Generator, pending: int = 0) -> None:
    """Add ``n`` random finished trials (and ``pending`` running ones) to ``trials``."""
    for i in range(n + pending):
        tid = len(trials.trials)
        [doc] = rand.suggest([tid], domain, trials, int(rng.integers(2**31)))
        if i < n:
            doc["state"] = 2
            doc["result"] = {"status": STATUS_OK, "loss": float(rng.random())}
        else:
            doc["state"] = 1
        trials.insert_trial_docs([doc])
        trials.refresh()


@pytest.mark.parametrize("make_space", [lecture_space, branin_space], ids=["lecture", "branin"])
@pytest.mark.parametrize("options", [{}, {"gamma": 0.4, "n_EI_candidates": 8, "prior_weight": 0.5}])
def test_same_suggestions_as_hyperopt(make_space: Any, options: dict[str, Any]) -> None:
    domain = Domain(lambda _: 0.0, make_space())
    trials = Trials()
    rng = np.random.default_rng(0)
    cached = CachedTPE(n_startup_jobs=5, **options)
    for step, (n, pending) in enumerate([(3, 0), (10, 2), (30, 1), (60, 0)]):
        grow(domain, trials, n, rng, pending)
        for seed in (1, 7, 123456):
            new_id = 10_000 + step
            ours = cached([new_id], domain, trials, seed)
            theirs = tpe.suggest([new_id], domain, trials, seed, n_startup_jobs=5, verbose=False, **options)
            assert ours[0]["misc"]["vals"] == theirs[0]["misc"]["vals"]
            assert ours[0]["misc"]["idxs"] == theirs[0]["misc"]["idxs"]
    assert len(cached._graphs) == 1, "one posterior graph, built once and reused"


def test_a_new_domain_gets_a_new_graph() -> None:
    cached = CachedTPE(n_startup_jobs=0)
    for make_space in (branin_space, lecture_space):
        domain = Domain(lambda _: 0.0, make_space())
        trials = Trials()
        grow(domain, trials, 5, np.random.default_rng(1))
        ours = cached([99], domain, trials, 3)
        theirs = tpe.suggest([99], domain, trials, 3, n_startup_jobs=0, verbose=False)
        assert ours[0]["misc"]["vals"] == theirs[0]["misc"]["vals"]
