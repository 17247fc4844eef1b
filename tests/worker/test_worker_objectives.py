"""Function objectives: the allow-list, the reference format and what a function may return."""

from __future__ import annotations

import pytest

from hyperhive.workers.objectives import ObjectiveError, ObjectiveRefused, is_allowed, run_function_objective

ALLOWED = ["hyperhive.demo_objectives", "hh_objectives"]


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("hyperhive.demo_objectives", True),
        ("hyperhive.demo_objectives.extra", True),
        ("hyperhive.demo_objectives_evil", False),
        ("search_spaces", False),
        ("os", False),
        ("hh_objectives", True),
    ],
)
def test_prefixes_match_at_dots(module: str, allowed: bool) -> None:
    assert is_allowed(module, [*ALLOWED, " ", "x."]) is allowed


def test_numbers_and_mappings_become_metrics() -> None:
    params = {"x": 3.0, "y": 2.0}
    branin = run_function_objective("hyperhive.demo_objectives:branin", params, ALLOWED, "loss")
    assert set(branin) == {"loss"} and isinstance(branin["loss"], float)
    toy = run_function_objective("hyperhive.demo_objectives:conditional_toy", params, ALLOWED, "loss")
    assert toy["extra"] == {"n_numbers": 2}
    assert run_function_objective("hh_objectives:numpy_value", {"x": 2.5}, ALLOWED, "v") == {"v": 2.5}


@pytest.mark.parametrize(
    ("reference", "error", "message"),
    [
        ("subprocess:run", ObjectiveRefused, "refused: module 'subprocess'"),
        ("hh_objectives", ObjectiveError, "must look like 'package.module:function'"),
        ("hh_objectives:missing", ObjectiveError, "has no 'missing'"),
        ("hh_objectives:_private", ObjectiveError, "no names starting with '_'"),
        ("hh_objectives.nope:f", ObjectiveError, "cannot import"),
        (
            "hyperhive.demo_objectives:conditional_toy",
            ObjectiveError,
            "no finite number for metric 'score'",
        ),
    ],
)
def test_bad_references_and_results(reference: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        run_function_objective(reference, {"x": 1.0}, ALLOWED, "score")


def test_non_numeric_results_are_refused() -> None:
    with pytest.raises(ObjectiveError, match="returned str"):
        run_function_objective("hh_objectives:text", {}, ALLOWED, "loss")
