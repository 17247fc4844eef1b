"""ParallelTPE: a trial in flight is not suggested again; with none in flight the suggestion is
hyperopt's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hyperopt import STATUS_OK, Trials, hp, tpe
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_NEW, JOB_STATE_RUNNING, STATUS_NEW, Domain

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore
from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_parallel import ParallelTPE, near_duplicate, parameter_scales

GRID_SPACE = {"a": hp.choice("a", [0, 1, 2, 3]), "b": hp.choice("b", [0, 1, 2, 3])}


def add(
    trials: Trials, domain: Domain, tid: int, vals: dict[str, Any], loss: float | None, state: int
) -> None:
    misc = {
        "tid": tid,
        "cmd": domain.cmd,
        "workdir": None,
        "idxs": {k: [tid] for k in vals},
        "vals": {k: [v] for k, v in vals.items()},
    }
    result = {"status": STATUS_OK, "loss": loss} if loss is not None else {"status": STATUS_NEW}
    [doc] = trials.new_trial_docs([tid], [None], [result], [misc])
    doc["state"] = state
    trials.insert_trial_docs([doc])
    trials.refresh()


def grid_history(in_flight_state: int | None) -> tuple[Domain, Trials]:
    """30 finished trials over a 4x4 grid, the best ones at (0, 0), and (0, 0) running again."""
    domain = Domain(lambda _: 0.0, GRID_SPACE)
    trials = Trials()
    rng = np.random.default_rng(0)
    for tid in range(30):
        a, b = (0, 0) if tid in (3, 17) else (int(rng.integers(1, 4)), int(rng.integers(4)))
        add(trials, domain, tid, {"a": a, "b": b}, loss=float(a + b), state=JOB_STATE_DONE)
    if in_flight_state is not None:
        add(trials, domain, 30, {"a": 0, "b": 0}, loss=None, state=in_flight_state)
    return domain, trials


def point(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: v[0] for k, v in docs[0]["misc"]["vals"].items() if v}


@pytest.mark.parametrize("state", [JOB_STATE_RUNNING, JOB_STATE_NEW], ids=["running", "queued"])
def test_a_trial_in_flight_is_not_suggested_again(state: int) -> None:
    domain, trials = grid_history(state)
    seeds = range(10)
    plain = [point(FastTPE(n_startup_jobs=10)([31], domain, trials, s)) for s in seeds]
    assert plain.count({"a": 0, "b": 0}) >= 8, "TPE alone re-suggests the running best (the defect)"
    ours = [point(ParallelTPE(FastTPE(n_startup_jobs=10))([31], domain, trials, s)) for s in seeds]
    assert {"a": 0, "b": 0} not in ours
    # redraws come from TPE's good density first: mostly next to the best, not uniform over the grid
    assert sum(p["a"] == 0 or p["b"] == 0 for p in ours) >= 7


def test_without_trials_in_flight_the_suggestion_is_hyperopts_unless_it_repeats_a_finished_one() -> None:
    domain, trials = grid_history(None)
    ours, theirs, no_repeats = [], [], []
    for seed in range(5):
        ours.append(
            ParallelTPE(FastTPE(n_startup_jobs=10), avoid_finished=False)([30], domain, trials, seed)[0][
                "misc"
            ]["vals"]
        )
        theirs.append(tpe.suggest([30], domain, trials, seed, n_startup_jobs=10)[0]["misc"]["vals"])
        no_repeats.append(point(ParallelTPE(FastTPE(n_startup_jobs=10))([30], domain, trials, seed)))
    assert ours == theirs
    assert {"a": [0], "b": [0]} in ours, "hyperopt suggests the finished best again"
    finished = {(d["misc"]["vals"]["a"][0], d["misc"]["vals"]["b"][0]) for d in trials.trials}
    assert not {(p["a"], p["b"]) for p in no_repeats} & finished, "by default no finished configuration again"


def test_continuous_values_near_a_finished_trial_are_kept() -> None:
    """Only exact repeats of finished trials are redrawn: TPE refining next to its best is hyperopt's."""
    domain = Domain(lambda _: 0.0, {"x": hp.uniform("x", 0, 1)})
    trials = Trials()
    for tid in range(20):
        x = float(np.random.default_rng(tid).random())
        add(trials, domain, tid, {"x": x}, loss=abs(x - 0.5), state=JOB_STATE_DONE)
    for seed in range(3):
        ours = ParallelTPE(FastTPE(n_startup_jobs=10))([20], domain, trials, seed)
        assert (
            ours[0]["misc"]["vals"]
            == tpe.suggest([20], domain, trials, seed, n_startup_jobs=10)[0]["misc"]["vals"]
        )


def test_a_space_of_one_point_still_gets_its_suggestion() -> None:
    domain = Domain(lambda _: 0.0, {"a": hp.choice("a", [7])})
    trials = Trials()
    add(trials, domain, 0, {"a": 0}, loss=None, state=JOB_STATE_RUNNING)
    assert point(ParallelTPE(FastTPE(n_startup_jobs=0))([1], domain, trials, 3)) == {"a": 0}


def test_n_ei_candidates_override_is_checked() -> None:
    domain, trials = grid_history(None)
    with pytest.raises(ValueError, match="n_EI_candidates: must be at least 1"):
        FastTPE(n_startup_jobs=10)([30], domain, trials, 1, n_EI_candidates=0)


def test_near_duplicate_compares_on_each_parameters_scale() -> None:
    domain = Domain(
        lambda _: 0.0,
        {
            "u": hp.uniform("u", 0, 10),
            "lr": hp.loguniform("lr", np.log(1e-5), np.log(1e-1)),
            "n": hp.normal("n", 0, 1),
            "c": hp.choice("c", [0, 1]),
        },
    )
    scales = parameter_scales(domain)
    assert set(scales) == {"u", "lr", "n"}
    base = {"u": [5.0], "lr": [1e-3], "n": [0.0], "c": [1]}
    assert near_duplicate(base, base, scales)
    assert near_duplicate(base, {**base, "u": [5.09]}, scales)  # within 1 % of the width 10
    assert not near_duplicate(base, {**base, "u": [5.2]}, scales)
    assert near_duplicate(base, {**base, "lr": [1.05e-3]}, scales)  # log scale: ~0.05 of ~9.2
    assert not near_duplicate(base, {**base, "lr": [1.5e-3]}, scales)
    assert not near_duplicate(base, {**base, "n": [0.1]}, scales)  # 4 sigma = 4: tolerance 0.04
    assert not near_duplicate(base, {**base, "c": [0]}, scales)
    assert not near_duplicate(base, {**base, "u": []}, scales), "different active parameters"


def lookup_doc(max_trials: int) -> dict[str, Any]:
    return {
        "name": "grid",
        "algorithm": {"type": "tpe", "n_startup_trials": 4},
        "max_trials": max_trials,
        "seed": 3,
        "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {"a": {"choice": [0, 1, 2, 3]}, "b": {"choice": [0, 1, 2, 3]}},
    }


def test_two_workers_through_the_store_never_run_the_same_configuration(tmp_path: Path) -> None:
    """Two workers on a 4x4 grid, each claim made while the other's trial runs (the store's claim
    path and engine): no claim gets the configuration of the trial in flight, and none repeats a
    finished one while the grid has points left."""
    store = SQLiteStore(tmp_path / "s.db")
    search = store.create_search(validate(lookup_doc(24)))
    seen: list[Any] = []
    first = store.claim("w1", 30, search_id=search.id)
    assert first is not None
    running = first
    while (t := store.claim("w2", 30, search_id=search.id)) is not None:
        assert t.config and running.config and t.lease_token and running.lease_token
        assert t.config["params"] != running.config["params"], t.number
        seen.append(running.config["params"])
        if len(seen) < 15:
            assert t.config["params"] not in seen, t.number
        p = running.config["params"]
        store.report(
            running.id, running.lease_token, TrialResult.done({"loss": float((p["a"] - 1) ** 2 + p["b"])})
        )
        running = t
    assert store.get_search(search.id).counts.done == 23
