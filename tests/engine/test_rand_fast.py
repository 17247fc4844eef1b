"""RandomSampler draws what hyperopt's rand.suggest draws, value for value, for every seed: a random
search suggests the same configurations it suggested before the sampler replaced rand.suggest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hyperopt import Trials, hp, rand
from hyperopt.base import Domain

from hyperhive.engine import Engine
from hyperhive.models import Search, SearchStatus, Trial, TrialState
from hyperhive.pcg64 import PCG64Stream
from hyperhive.rand_fast import RandomSampler, plain
from hyperhive.search_spaces import config_from_vals, validate
from tests.engine.test_tpe_fast import SPACES

test_domains = pytest.importorskip("hyperopt.tests.unit.test_domains")


def theirs(domain: Domain, new_id: int, seed: int) -> dict[str, list[Any]]:
    return dict(rand.suggest([new_id], domain, Trials(), seed)[0]["misc"]["vals"])


def assert_same_draws(domain: Domain, seeds: range) -> None:
    sampler = RandomSampler(domain)
    assert sampler.program.steps is not None, "compiled, not left to rec_eval"
    for seed in seeds:
        new_id = seed * 7 % 101
        ours, expected = sampler.vals(new_id, seed), theirs(domain, new_id, seed)
        assert list(ours) == list(expected)  # same labels, same order
        # same values, exactly (repr); the Python stream draws Python numbers where numpy gives numpy
        # scalars, which the engine makes plain: compared as the engine stores them
        assert repr(_plain_vals(ours)) == repr(_plain_vals(expected)), seed


def _plain_vals(vals: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {k: [plain(x) for x in v] for k, v in vals.items()}


@pytest.mark.parametrize("space", sorted(SPACES))
def test_same_draws_as_rand_suggest(space: str) -> None:
    assert_same_draws(Domain(lambda _: 0.0, SPACES[space]()), range(300))


@pytest.mark.parametrize("name", ["many_dists", "q1_choice", "n_arms", "gauss_wave2", "distractor", "branin"])
def test_same_draws_on_hyperopt_test_domains(name: str) -> None:
    domain = getattr(test_domains, name)()
    assert_same_draws(domain, range(100))


def test_inactive_parameters_get_no_value() -> None:
    sampler = RandomSampler(Domain(lambda _: 0.0, SPACES["conditional"]()))
    seen = {tuple(sorted(k for k, v in sampler.vals(i, i).items() if v)) for i in range(200)}
    assert len(seen) >= 3  # every branch reached; each draw holds only its branch's labels
    assert all(len(labels) < 8 for labels in seen)


DOC = {
    "name": "pinned",
    "algorithm": "random",
    "max_trials": 50,
    "seed": 7,
    "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
    "params": {
        "x": {"uniform": [0, 1]},
        "lr": {"loguniform": [1e-4, 1]},
        "units": {"quniform": [8, 64, 8]},
        "act": {"choice": ["relu", {"name": "leaky", "alpha": {"uniform": [0, 0.3]}}]},
    },
}


def search_of(doc: dict[str, Any]) -> Search:
    spec = validate(doc)
    return Search(
        id="s1",
        name=spec.name,
        owner=None,
        status=SearchStatus.RUNNING,
        document=spec.to_document(),
        algorithm=spec.algorithm,
        max_trials=spec.max_trials,
        seed=7,
        objective_metric=spec.objective_metric,
        objective_mode=spec.objective_mode,
        max_consecutive_failures=spec.max_consecutive_failures,
        max_retries=spec.max_retries,
        created_at=1.0,
        updated_at=1.0,
    )


FLAT_PARAMS = {
    "x": {"uniform": [0, 1]},
    "n": {"uniformint": [1, 9]},
    "lr": {"loguniform": [1e-4, 1]},
    "act": {"choice": ["relu", "tanh"]},
}


@pytest.mark.parametrize("flat", [False, True])
def test_the_engine_suggests_what_rand_suggest_did(flat: bool) -> None:
    """The engine's random suggestions (vals and config) for a document's slots are those of
    rand.suggest with the trial's number and seed, as before the sampler (a conditional document:
    the compiled graph; a flat one: the direct path)."""
    doc = {**DOC, "params": FLAT_PARAMS} if flat else DOC
    search = search_of(doc)
    space = validate(doc).space
    domain = Domain(lambda _: 0.0, space)
    engine = Engine()
    sampler = engine._search_cache(search).sampler
    assert sampler is not None and (sampler.draws is not None) == flat
    for number in range(40):
        seed = 1_000 + 13 * number
        trial = Trial("t", "s1", number, TrialState.RUNNING, None, None, seed, 0.0, 0.0)
        vals, config = engine.suggest(None, search, trial)  # type: ignore[arg-type]  # random reads no feed
        expected = {
            k: [x.item() if isinstance(x, np.generic) else x for x in v]
            for k, v in theirs(domain, number, seed).items()
        }
        assert vals == expected
        assert config == config_from_vals(space, {k: v[0] for k, v in expected.items() if v})


def flat_space() -> dict[str, Any]:
    """Every distribution but pchoice (whose sampling node returns a graph to evaluate)."""
    space = SPACES["all_distributions"]()
    del space["pchoice"]
    return dict(space)


@pytest.mark.parametrize(
    ("space", "direct"),
    [("mixed5", True), ("flat", True), ("all_distributions", False), ("conditional", False)],
)
def test_spaces_without_conditional_parameters_take_the_direct_path(space: str, direct: bool) -> None:
    """The direct path (sampling functions called in order, no graph) serves flat spaces and draws
    what rand.suggest draws; a conditional space, or one with a pchoice, runs the compiled graph."""
    domain = Domain(lambda _: 0.0, flat_space() if space == "flat" else SPACES[space]())
    sampler = RandomSampler(domain)
    assert (sampler.draws is not None) == direct
    for seed in range(200):
        assert repr(_plain_vals(sampler.vals(seed, seed))) == repr(_plain_vals(theirs(domain, seed, seed)))


TOY = {"x": hp.uniform("x", -5, 5), "y": hp.loguniform("y", -6.9, 0), "z": hp.choice("z", [1, 2, 3])}


@pytest.mark.parametrize(
    ("space", "stream"),
    [("toy", True), ("mixed5", False), ("flat", False), ("conditional", False)],
)
def test_uniform_loguniform_and_choice_spaces_draw_from_the_python_stream(space: str, stream: bool) -> None:
    """A flat space of uniform, loguniform and choice parameters draws from a PCG64Stream (no numpy
    call but loguniform's exp); one with any other distribution stays on numpy's generator. Both draw
    rand.suggest's values, for seeds far beyond the ones the sampler checked itself on."""
    spaces = {"toy": lambda: TOY, "flat": flat_space}
    domain = Domain(lambda _: 0.0, spaces.get(space, SPACES.get(space))())
    sampler = RandomSampler(domain)
    assert (sampler._stream_calls is not None) == stream
    for seed in [*range(0, 2**31 - 1, 2**31 // 300), 2**31 - 2]:
        assert repr(_plain_vals(sampler.vals(3, seed))) == repr(_plain_vals(theirs(domain, 3, seed))), seed


def test_a_stream_that_draws_otherwise_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler checks the stream against the program first: a stream drawing other values (here
    one ulp off) leaves the sampler on numpy's generator, still drawing rand.suggest's values."""
    real = PCG64Stream.uniform
    monkeypatch.setattr(
        PCG64Stream, "uniform", lambda self, low, high: math.nextafter(real(self, low, high), 9.0)
    )
    domain = Domain(lambda _: 0.0, TOY)
    sampler = RandomSampler(domain)
    assert sampler.draws is not None and sampler._stream_calls is None
    for seed in range(50):
        assert repr(_plain_vals(sampler.vals(3, seed))) == repr(_plain_vals(theirs(domain, 3, seed)))
