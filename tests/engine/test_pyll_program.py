"""A compiled pyll Program evaluates a graph to what pyll.rec_eval gives, drawing random numbers in the
same order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hyperopt import pyll
from hyperopt.base import Domain
from hyperopt.pyll import scope
from hyperopt.pyll.stochastic import randint_via_categorical

from hyperhive.pyll_program import Program, rec_eval_order

test_domains = pytest.importorskip("hyperopt.tests.unit.test_domains")


def prior_graph(domain: Domain) -> Any:
    """The vectorised prior that hyperopt's rand.suggest evaluates: every parameter of the space
    sampled from one shared generator."""
    return pyll.as_apply([domain.vh.idxs_by_label(), domain.vh.vals_by_label()])


@pytest.mark.parametrize("name", ["many_dists", "q1_choice", "gauss_wave2", "n_arms", "branin"])
def test_prior_graphs_of_hyperopt_test_domains(name: str) -> None:
    domain = getattr(test_domains, name)()
    program = Program(prior_graph(domain), [domain.s_new_ids, domain.s_rng])
    assert program.steps is not None, "compiled, not left to rec_eval"
    for seed in range(5):
        ids = list(range(seed, seed + 30))
        ours = program.run({domain.s_new_ids: ids, domain.s_rng: np.random.default_rng(seed)})
        theirs = pyll.rec_eval(
            program.top, memo={domain.s_new_ids: ids, domain.s_rng: np.random.default_rng(seed)}
        )
        assert repr(ours) == repr(theirs)


def test_draws_happen_in_rec_eval_order() -> None:
    """Two samplers on one generator: swapping which draws first would swap the numbers."""
    rng_node = pyll.Literal("rng")
    a = scope.uniform(0, 1, rng=rng_node, size=(3,))
    b = scope.normal(0, 1, rng=rng_node, size=(3,))
    expr = pyll.as_apply({"b": b, "a": a, "sum": a + b})
    program = Program(expr, [rng_node])
    ours = program.run({rng_node: np.random.default_rng(5)})
    theirs = pyll.rec_eval(expr, memo={rng_node: np.random.default_rng(5)})
    for k in theirs:
        np.testing.assert_array_equal(ours[k], theirs[k])
    order = [n for n in rec_eval_order(program.top, [rng_node]) or [] if n.name in ("uniform", "normal")]
    assert len(order) == 2


def test_a_node_returning_an_expression_is_evaluated_like_rec_eval() -> None:
    rng_node = pyll.Literal("rng")
    expr = pyll.as_apply(
        [randint_via_categorical([0.2, 0.3, 0.5], rng=rng_node, size=(8,)), scope.uniform(0, 1, rng=rng_node)]
    )
    ours = Program(expr, [rng_node]).run({rng_node: np.random.default_rng(1)})
    theirs = pyll.rec_eval(expr, memo={rng_node: np.random.default_rng(1)})
    assert repr(ours) == repr(theirs)


def test_switch_graphs_are_left_to_rec_eval() -> None:
    """A switch evaluates only its chosen branch; such graphs are run by rec_eval itself."""
    which = pyll.Literal("which")
    expr = scope.switch(which, pyll.as_apply(10), scope.add(20, 1))
    program = Program(expr, [which])
    assert program.steps is None
    assert [program.run({which: i}) for i in (0, 1)] == [10, 21]
