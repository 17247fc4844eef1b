"""TPE from a History kept between asks (what the engine does) suggests exactly what hyperopt's
``tpe.suggest`` suggests on a ``Trials`` of the same trials, through every kind of change: trials
arriving in flight, finishing out of order, failing, arriving below the highest id, being removed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hyperopt import STATUS_FAIL, STATUS_OK, rand, tpe, trials_from_docs
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_RUNNING, Domain, miscs_to_idxs_vals

from hyperhive import engine as engine_module
from hyperhive.engine import Engine, make_algorithm
from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore
from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_history import History, exact_key
from hyperhive.tpe_parallel import ParallelTPE
from tests.engine.test_tpe_fast import SPACES, assert_same


class Mirror:
    """Trial documents by id, and a History fed each change as the engine feeds it."""

    def __init__(self, space: Any, seed: int) -> None:
        self.domain = Domain(lambda _: 0.0, space)
        self.docs: dict[int, dict[str, Any]] = {}
        self.history = History(list(self.domain.params))
        self.rng = np.random.default_rng(seed)

    def put(self, doc: dict[str, Any]) -> None:
        self.docs[doc["tid"]] = doc
        if doc["state"] == JOB_STATE_ERROR:  # as the engine: hyperopt's Trials.trials leaves it out
            self.history.remove(doc["tid"])
            return
        loss = doc["result"].get("loss")
        self.history.set(doc["tid"], doc["misc"]["vals"], loss, doc["state"] == JOB_STATE_RUNNING)

    def remove(self, tid: int) -> None:
        self.docs.pop(tid, None)
        self.history.remove(tid)

    def trials(self) -> Any:
        return trials_from_docs([self.docs[t] for t in sorted(self.docs)], validate=False)

    def running(self) -> list[int]:
        return [t for t, d in self.docs.items() if d["state"] == JOB_STATE_RUNNING]

    def step(self, doc: dict[str, Any]) -> None:
        """Start ``doc`` running; finish, fail or remove some others; now and then a late trial with an
        id below the highest."""
        doc["state"] = JOB_STATE_RUNNING
        self.put(doc)
        while self.running() and self.rng.random() < 0.7:
            tid = self.running()[int(self.rng.integers(len(self.running())))]
            done = dict(self.docs[tid])
            r = self.rng.random()
            if r < 0.05:
                self.remove(tid)
                continue
            if r < 0.15:
                done["state"], done["result"] = JOB_STATE_ERROR, {"status": STATUS_FAIL}
            else:
                loss = float(np.round(self.rng.random(), 2))  # rounded: ties in the losses
                done["state"], done["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": loss}
            self.put(done)
        free = sorted(set(range(max(self.docs, default=0))) - set(self.docs))
        if free and self.rng.random() < 0.1:  # a late trial below the highest id (re-sampled slot)
            [late] = rand.suggest([free[0]], self.domain, self.trials(), int(self.rng.integers(1000)))
            late["state"], late["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": 0.5}
            self.put(late)


def check_history(m: Mirror) -> None:
    """The History holds what tpe.suggest reads from the documents (failed trials left out)."""
    tids = sorted(t for t, d in m.docs.items() if d["state"] != JOB_STATE_ERROR)
    assert [d["tid"] for d in m.trials().trials] == tids
    assert list(m.history.tids()) == tids
    losses = [m.docs[t]["result"].get("loss") for t in tids]
    assert list(m.history.losses()) == [math.inf if x is None else x for x in losses]
    idxs, vals = miscs_to_idxs_vals([m.docs[t]["misc"] for t in tids], keys=list(m.domain.params))
    for label in m.domain.params:
        obs_idxs, obs_vals = m.history.observations(label)
        assert list(obs_idxs) == idxs[label]
        np.testing.assert_array_equal(obs_vals, np.asarray(vals[label]), strict=True)
    in_flight = [m.docs[t]["misc"]["vals"] for t in tids if m.docs[t]["state"] == JOB_STATE_RUNNING]
    assert sorted(map(exact_key, m.history.in_flight())) == sorted(map(exact_key, in_flight))


@pytest.mark.parametrize("space", list(SPACES), ids=list(SPACES))
def test_from_history_suggests_what_tpe_suggest_does(space: str) -> None:
    m = Mirror(SPACES[space](), seed=len(space))
    options = {"n_startup_jobs": 5, "gamma": 0.5}
    fast = FastTPE(**options)
    for tid in range(60):
        check_history(m)
        trials = m.trials()
        ours = fast.from_history([1000 + tid], m.domain, m.history, tid)
        theirs = tpe.suggest([1000 + tid], m.domain, trials, tid, verbose=False, **options)  # deterministic:
        assert_same(ours, theirs)  # computed once for both of ours (the expensive half of this test)
        ours = fast([1000 + tid], m.domain, trials, tid)  # the Trials path on the same instance agrees
        assert_same(ours, theirs)
        doc = ours[0]
        doc["tid"] = doc["misc"]["tid"] = max(m.docs, default=-1) + 1
        doc["misc"]["idxs"] = {k: ([doc["tid"]] if v else []) for k, v in doc["misc"]["vals"].items()}
        m.step(doc)


@pytest.mark.parametrize("space", ["mixed5", "lecture"])
def test_parallel_tpe_from_history_agrees_with_its_trials_path(space: str) -> None:
    m = Mirror(SPACES[space](), seed=7)
    ours = ParallelTPE(FastTPE(n_startup_jobs=3, gamma=0.5))
    for tid in range(50):
        trials = m.trials()
        new = ours.from_history([tid + 500], m.domain, m.history, tid)
        reference = ParallelTPE(FastTPE(n_startup_jobs=3, gamma=0.5))  # reads the whole Trials afresh
        assert_same(new, reference([tid + 500], m.domain, trials, tid))
        doc = new[0]
        doc["tid"] = doc["misc"]["tid"] = max(m.docs, default=-1) + 1
        doc["misc"]["idxs"] = {k: ([doc["tid"]] if v else []) for k, v in doc["misc"]["vals"].items()}
        m.step(doc)


def test_history_refuses_more_than_one_value() -> None:
    h = History(["a"])
    with pytest.raises(ValueError, match="'a'"):
        h.set(0, {"a": [1.0, 2.0]}, 1.0, in_flight=False)
    with pytest.raises(ValueError, match="one loss per trial"):
        h.replace_losses([1.0])


def tpe_doc(n: int, name: str = "h") -> dict[str, Any]:
    return {
        "name": name,
        "algorithm": {"type": "tpe", "n_startup_trials": 3},
        "max_trials": n,
        "seed": 5,
        "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {
            "x": {"uniform": [0, 1]},
            "lr": {"loguniform": [1e-4, 1]},
            "k": {"choice": [1, 2, 3]},
            "n": {"quniform": [1, 50, 1]},
        },
    }


def test_engine_suggests_what_parallel_tpe_suggests_on_the_whole_history(tmp_path: Path) -> None:
    """Through the store: interleaved claims, reports, failures; each suggestion equals the one a fresh
    ParallelTPE makes from a Trials of every trial read at that moment."""
    store = SQLiteStore(tmp_path / "h.db")
    search = store.create_search(validate(tpe_doc(40)))
    engine = store.engine
    real = engine.suggest
    checked = []

    def checked_suggest(feed: Any, s: Any, trial: Any) -> Any:
        vals, config = real(feed, s, trial)
        spec = validate(s.document)
        reference = make_algorithm(spec.algorithm, dict(spec.algorithm_options))
        cache = engine._search_cache(s)
        docs = reference([trial.number], cache.domain, engine.history(feed, s), int(trial.seed))
        assert docs[0]["misc"]["vals"] == vals
        checked.append(trial.number)
        return vals, config

    engine.suggest = checked_suggest  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    held = []
    while True:
        t = store.claim("w", 60)
        if t is None:
            break
        held.append(t)
        while len(held) > 2 or (held and rng.random() < 0.5):
            done = held.pop(int(rng.integers(len(held))))
            assert done.lease_token
            if rng.random() < 0.15:
                store.report(done.id, done.lease_token, TrialResult.failed("boom"))
            else:
                store.report(done.id, done.lease_token, TrialResult.done({"loss": float(rng.random())}))
    assert len(checked) == 40
    assert engine._search_cache(search).tpe is not None
    store.close()


def test_the_engine_keeps_a_bounded_number_of_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "MAX_CACHED_SEARCHES", 2)
    store = SQLiteStore(tmp_path / "b.db")
    engine = Engine()
    searches = [store.create_search(validate(tpe_doc(10, f"s{i}"))) for i in range(3)]
    for s in searches:
        t = store.claim("w", 60, search_id=s.id)
        assert t is not None
        assert len(engine.history(store, s).trials) == 1
    assert len(engine._cache) == 2
    assert [k[0] for k in engine._cache] == [searches[1].id, searches[2].id]
    # the one dropped is read again in full from the change feed
    assert len(engine.history(store, searches[0]).trials) == 1
    assert [k[0] for k in engine._cache] == [searches[2].id, searches[0].id]
    store.close()
