"""FastTPE suggests exactly what hyperopt's tpe.suggest suggests: same seed and history, same values.

Equality is exact (``==`` on the suggested values and indices), not within a tolerance: the vectorised
kernels are bit-identical to hyperopt's (tests/engine/test_tpe_kernels.py) and the sampling is hyperopt's.
"""

from __future__ import annotations

import copy
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, hp, rand, tpe, trials_from_docs
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_RUNNING, Domain
from hyperopt.pyll import scope

from hyperhive.search_spaces import validate
from hyperhive.tpe_fast import FastTPE

test_domains = pytest.importorskip("hyperopt.tests.unit.test_domains")


def mixed5_space() -> Any:
    """The benchmark's space (benchmarks/tpe_scale.py)."""
    return {
        "a": hp.uniform("a", 0, 1),
        "b": hp.loguniform("b", np.log(1e-4), 0.0),
        "c": hp.choice("c", [0, 1, 2]),
        "d": hp.quniform("d", 1, 100, 1),
        "e": hp.uniform("e", -5, 5),
    }


def lecture_space() -> Any:
    path = Path(__file__).resolve().parents[2] / "search_spaces" / "examples" / "lecture-cnn.yaml"
    return validate(yaml.safe_load(path.read_text())).space


def conditional_space() -> Any:
    """Nested choices whose branches hold parameters of every kind, some shared by no other branch."""
    return hp.choice(
        "model",
        [
            {"kind": "linear", "l2": hp.loguniform("l2", -10, 0)},
            {
                "kind": "tree",
                "depth": hp.quniform("depth", 1, 12, 1),
                "split": hp.choice(
                    "split", [{"by": "gini"}, {"by": "entropy", "tol": hp.qlognormal("tol", 0, 1, 0.5)}]
                ),
            },
            {
                "kind": "net",
                "layers": hp.randint("layers", 1, 5),
                "lr": hp.normal("lr", 0, 2),
                "drop": hp.uniform("drop", 0, 1),
            },
        ],
    )


def all_distributions_space() -> Any:
    return {
        "uniform": hp.uniform("uniform", -1, 1),
        "quniform": hp.quniform("quniform", 0, 10, 2.5),
        "loguniform": hp.loguniform("loguniform", -3, 2),
        "qloguniform": hp.qloguniform("qloguniform", 0, 4, 1),
        "normal": hp.normal("normal", 3, 2),
        "qnormal": hp.qnormal("qnormal", 0, 5, 1),
        "lognormal": hp.lognormal("lognormal", 0, 1),
        "qlognormal": hp.qlognormal("qlognormal", 1, 0.5, 2),
        "randint": hp.randint("randint", 7),
        "randint2": hp.randint("randint2", -3, 4),
        "choice": hp.choice("choice", ["x", "y", "z", "w"]),
        "pchoice": hp.pchoice("pchoice", [(0.2, "p"), (0.5, "q"), (0.3, "r")]),
    }


SPACES = {
    "mixed5": mixed5_space,
    "lecture": lecture_space,
    "conditional": conditional_space,
    "all_distributions": all_distributions_space,
}


def assert_same(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert len(ours) == len(theirs) == 1
    assert ours[0]["tid"] == theirs[0]["tid"]
    assert ours[0]["misc"]["idxs"] == theirs[0]["misc"]["idxs"]
    assert ours[0]["misc"]["vals"] == theirs[0]["misc"]["vals"]


class Driver:
    """A history that grows like a parallel search's: suggestions start running, some finish out of
    order, some fail, and the Trials is now and then rebuilt from copied documents (as the engine does)."""

    def __init__(self, space: Any, seed: int) -> None:
        self.domain = Domain(lambda _: 0.0, space)
        self.trials = Trials()
        self.rng = np.random.default_rng(seed)
        self.running: list[dict[str, Any]] = []

    def add(self, doc: dict[str, Any]) -> None:
        doc["state"] = JOB_STATE_RUNNING
        self.trials.insert_trial_docs([doc])
        self.running.append(doc)
        while self.running and self.rng.random() < 0.7:  # finish a random running trial
            done = self.running.pop(int(self.rng.integers(len(self.running))))
            if self.rng.random() < 0.1:
                done["state"], done["result"] = JOB_STATE_ERROR, {"status": STATUS_FAIL}
            else:
                loss = float(np.round(self.rng.random(), 2))  # rounded: ties in the losses
                done["state"], done["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": loss}
        if self.rng.random() < 0.1:
            docs = copy.deepcopy(self.trials._dynamic_trials)
            self.running = [d for d in docs if d["state"] == JOB_STATE_RUNNING]
            self.trials = trials_from_docs(docs, validate=False)
        self.trials.refresh()


@pytest.mark.parametrize("space", list(SPACES), ids=list(SPACES))
@pytest.mark.parametrize(
    "options",
    [{"n_startup_jobs": 5}, {"n_startup_jobs": 0, "gamma": 0.5, "n_EI_candidates": 7, "prior_weight": 0.3}],
    ids=["defaults", "options"],
)
def test_same_suggestions_as_hyperopt_on_a_growing_history(space: str, options: dict[str, Any]) -> None:
    d = Driver(SPACES[space](), seed=len(space))
    fast = FastTPE(**options)
    for tid in range(60):
        seed = int(d.rng.integers(2**31))
        ours = fast([tid], d.domain, d.trials, seed)
        theirs = tpe.suggest([tid], d.domain, d.trials, seed, verbose=False, **options)
        assert_same(ours, theirs)
        d.add(theirs[0])


def test_same_suggestions_at_1000_trials_on_the_benchmark_space() -> None:
    domain = Domain(lambda _: 0.0, mixed5_space())
    trials = Trials()
    rng = np.random.default_rng(7)
    docs = []
    for tid in range(1000):
        [doc] = rand.suggest([tid], domain, trials, int(rng.integers(2**31)))
        doc["state"], doc["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": float(rng.random())}
        docs.append(doc)
    trials.insert_trial_docs(docs)
    trials.refresh()
    fast = FastTPE()
    for seed in range(5):
        assert_same(
            fast([2000], domain, trials, seed), tpe.suggest([2000], domain, trials, seed, verbose=False)
        )


# hyperopt's own TPE test domains (hyperopt/tests/unit/test_domains.py) with the settings of its TestOpt.
HYPEROPT_DOMAINS = [
    "coin_flip",
    "quadratic1",
    "q1_choice",
    "q1_lognormal",
    "n_arms",
    "distractor",
    "gauss_wave",
    "gauss_wave2",
    "many_dists",
    "branin",
]
GAMMAS = {"distractor": 0.05}
PRIOR_WEIGHTS = {"distractor": 0.01}
N_EIS = {"quadratic1": 5, "distractor": 15}
LENGTHS = {
    "quadratic1": 1000,
    "many_dists": 200,
    "distractor": 100,
    "q1_lognormal": 250,
    "gauss_wave2": 75,
    "branin": 200,
}


def fmin_run(name: str, algo: Any, max_evals: int) -> Trials:
    bandit = getattr(test_domains, name)()
    trials = Trials()
    fmin(
        lambda x: x,
        space=bandit.expr,
        algo=algo,
        trials=trials,
        max_evals=max_evals,
        rstate=np.random.default_rng(np.random.PCG64(0)),
        catch_eval_exceptions=False,
        show_progressbar=False,
    )
    return trials


def check_hyperopt_domain(name: str, max_evals: int) -> None:
    kw = {
        "gamma": GAMMAS.get(name, tpe._default_gamma),
        "prior_weight": PRIOR_WEIGHTS.get(name, tpe._default_prior_weight),
        "n_EI_candidates": N_EIS.get(name, tpe._default_n_EI_candidates),
    }
    theirs = fmin_run(name, partial(tpe.suggest, verbose=False, **kw), max_evals)
    ours = fmin_run(name, FastTPE(**kw), max_evals)
    assert [t["misc"]["vals"] for t in ours.trials] == [t["misc"]["vals"] for t in theirs.trials]
    assert ours.losses() == theirs.losses()


@pytest.mark.parametrize("name", HYPEROPT_DOMAINS)
def test_hyperopt_test_domains(name: str) -> None:
    check_hyperopt_domain(name, 60)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in HYPEROPT_DOMAINS if n in LENGTHS])
def test_hyperopt_test_domains_at_hyperopt_test_lengths(name: str) -> None:
    check_hyperopt_domain(name, LENGTHS[name])


def test_hyperopt_quantised_uniform_test() -> None:
    """hyperopt's TestOptQUniform: a noisy objective (scope.normal) and non-default gamma/prior weight."""
    runs = []
    for algo in (
        partial(tpe.suggest, prior_weight=2.5, gamma=0.2, verbose=False),
        FastTPE(prior_weight=2.5, gamma=0.2),
    ):
        noise = scope.normal(0, 1, rng=np.random.default_rng(123))  # a fresh noise stream per run
        space = {"loss": (hp.quniform("x", 1.01, 10, 1) - 4) ** 2 + noise, "status": STATUS_OK}
        trials = Trials()
        fmin(
            lambda x: x,
            space=space,
            algo=algo,
            trials=trials,
            max_evals=40,
            rstate=np.random.default_rng(0),
            show_progressbar=False,
        )
        runs.append(([t["misc"]["vals"] for t in trials.trials], trials.losses()))
    assert runs[0] == runs[1]


def observations(fast: FastTPE) -> Any:
    assert fast._mirror is not None
    return fast._mirror.history


def test_observations_are_appended_not_rebuilt() -> None:
    d = Driver(mixed5_space(), seed=3)
    fast = FastTPE(n_startup_jobs=0)
    lists = []
    for tid in range(40):
        ours = fast([tid], d.domain, d.trials, tid)
        assert_same(ours, tpe.suggest([tid], d.domain, d.trials, tid, verbose=False, n_startup_jobs=0))
        lists.append(observations(fast)._obs_vals["a"])
        d.trials.insert_trial_docs(ours)
        d.trials.refresh()
        for doc in d.trials._dynamic_trials:  # every trial finishes at once: a growing prefix
            if doc["state"] != JOB_STATE_DONE:
                doc["state"], doc["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": math.sin(tid)}
    assert all(x is lists[0] for x in lists), "one list of observed values, appended to"
    assert len(lists[0]) == 39
    # a history that is not an extension of the last one (a trial gone) is re-read, and still agrees
    docs = [copy.deepcopy(doc) for doc in d.trials.trials if doc["tid"] != 5]
    trials = trials_from_docs(docs, validate=False)
    assert_same(
        fast([99], d.domain, trials, 1),
        tpe.suggest([99], d.domain, trials, 1, verbose=False, n_startup_jobs=0),
    )
    assert 5 not in observations(fast)


def test_a_new_domain_gets_new_state() -> None:
    fast = FastTPE(n_startup_jobs=0)
    for make_space in (mixed5_space, conditional_space, mixed5_space):
        d = Driver(make_space(), seed=1)
        for tid in range(8):
            ours = fast([tid], d.domain, d.trials, tid)
            assert_same(ours, tpe.suggest([tid], d.domain, d.trials, tid, verbose=False, n_startup_jobs=0))
            d.add(ours[0])


def test_malformed_history_is_refused() -> None:
    domain = Domain(lambda _: 0.0, mixed5_space())
    trials = Trials()
    [doc] = rand.suggest([0], domain, trials, 0)
    doc["misc"]["idxs"]["a"] = [0, 0]
    doc["state"], doc["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": 1.0}
    trials.insert_trial_docs([doc])
    trials.refresh()
    with pytest.raises(ValueError, match="'a'"):
        FastTPE(n_startup_jobs=0)([1], domain, trials, 0)
