"""Every distribution: compiles, samples in range and of the right type, label = path; bad forms."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from spacekit import assert_error, errors_of, function_doc, spec_of

from hyperhive.search_spaces import parameter_labels, parameters

N = 300

# (written form, check of one value)
CASES: dict[str, tuple[Any, Any]] = {
    "randint": ({"randint": [3, 7]}, lambda v: type(v) is int and 3 <= v < 7),
    "uniformint": ({"uniformint": [1, 4]}, lambda v: type(v) is int and 1 <= v <= 4),
    "uniform": ({"uniform": [-0.5, 0.5]}, lambda v: type(v) is float and -0.5 <= v <= 0.5),
    "uniform_by_name": ({"uniform": {"low": 2, "high": 3}}, lambda v: type(v) is float and 2 <= v <= 3),
    "quniform_int": (
        {"quniform": [16, 256, 16]},
        lambda v: type(v) is int and 16 <= v <= 256 and v % 16 == 0,
    ),
    "quniform_float": (
        {"quniform": [0.0, 1, 0.25]},
        lambda v: type(v) is float and v in (0.0, 0.25, 0.5, 0.75, 1.0),
    ),
    "loguniform": ({"loguniform": [1e-4, 1e-1]}, lambda v: type(v) is float and 1e-4 <= v <= 1e-1),
    "qloguniform_int": (
        {"qloguniform": [8, 512, 8]},
        lambda v: type(v) is int and 8 <= v <= 512 and v % 8 == 0,
    ),
    "qloguniform_float": (
        {"qloguniform": [0.01, 1.0, 0.01]},
        lambda v: type(v) is float and 0.0 <= v <= 1.0 + 1e-9,
    ),
    "normal": ({"normal": [10, 2]}, lambda v: type(v) is float and -10 < v < 30),
    "qnormal_int": ({"qnormal": [0, 5, 2]}, lambda v: type(v) is int and v % 2 == 0),
    "qnormal_float": ({"qnormal": [0, 5, 0.5]}, lambda v: type(v) is float and (v * 2).is_integer()),
    "lognormal": ({"lognormal": [0, 1]}, lambda v: type(v) is float and v > 0),
    "qlognormal_int": ({"qlognormal": [3, 1, 5]}, lambda v: type(v) is int and v >= 0 and v % 5 == 0),
    "choice_numbered": ({"choice": [1, "a", None, True, 2.5]}, lambda v: v in (1, "a", None, True, 2.5)),
    "choice_named": ({"choice": {"small": 8, "big": 64}}, lambda v: v in (8, 64)),
    "pchoice": ({"pchoice": [[0.5, "x"], [0.5, "y"]]}, lambda v: v in ("x", "y")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distribution_samples_in_range_with_the_right_type(case: str) -> None:
    written, ok = CASES[case]
    spec = spec_of({"v": written})
    assert parameter_labels(spec) == ["params.v"]
    values = [spec.sample(seed)["params"]["v"] for seed in range(N)]
    bad = [v for v in values if not ok(v)]
    assert not bad, f"{case}: out of range or wrong type: {bad[:5]}"
    assert len({json.dumps(v) for v in values}) > 1, "never varies"
    json.dumps(values, allow_nan=False)


def test_integer_distributions_reach_both_ends() -> None:
    spec = spec_of({"r": {"randint": [0, 3]}, "u": {"uniformint": [0, 3]}})
    rs = {spec.sample(s)["params"]["r"] for s in range(200)}
    us = {spec.sample(s)["params"]["u"] for s in range(200)}
    assert rs == {0, 1, 2}
    assert us == {0, 1, 2, 3}


def test_loguniform_is_uniform_in_log_space() -> None:
    spec = spec_of({"lr": {"loguniform": [1e-4, 1e-0]}})
    logs = np.log10([spec.sample(s)["params"]["lr"] for s in range(2000)])
    # each decade gets about a quarter of the samples
    counts = np.histogram(logs, bins=[-4, -3, -2, -1, 0])[0] / len(logs)
    assert np.all(np.abs(counts - 0.25) < 0.05), counts


def test_lognormal_parameters_are_those_of_the_log() -> None:
    spec = spec_of({"v": {"lognormal": [2.0, 0.5]}})
    logs = np.log([spec.sample(s)["params"]["v"] for s in range(2000)])
    assert abs(logs.mean() - 2.0) < 0.05
    assert abs(logs.std() - 0.5) < 0.05


def test_parameter_info() -> None:
    spec = spec_of(
        {
            "lr": {"loguniform": [1e-4, 1e-2]},
            "n": {"quniform": [1, 9, 2]},
            "opt": {"choice": {"a": 1, "b": {"m": {"uniform": [0, 1]}}}},
            "p": {"pchoice": [[0.25, 1], [0.75, 2]]},
        }
    )
    info = {p.label: p for p in parameters(spec)}
    assert list(info) == ["params.lr", "params.n", "params.opt", "params.opt.b.m", "params.p"]
    assert info["params.lr"].log and not info["params.lr"].integer
    assert info["params.lr"].args == (1e-4, 1e-2)
    assert info["params.n"].integer
    assert info["params.opt"].options == ("a", "b")
    assert info["params.p"].options == ("0", "1")
    assert info["params.p"].probabilities == (0.25, 0.75)


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ({"uniform": [0.5, 0.1]}, "uniform needs low < high, got [0.5, 0.1]"),
        ({"uniform": [1, 1]}, "uniform needs low < high"),
        ({"uniform": [0, 1, 2]}, "uniform needs 2 arguments [low, high], got 3"),
        ({"uniform": [0]}, "uniform needs 2 arguments"),
        ({"uniform": 3}, "uniform needs a list [low, high], got 3"),
        ({"uniform": "0, 1"}, "uniform needs a list"),
        ({"uniform": [True, 2]}, "uniform needs numbers [low, high], got true for low"),
        ({"uniform": ["0", 2]}, "got '0' for low"),
        ({"uniform": [None, 2]}, "got null for low"),
        ({"uniform": [0, 1e16]}, "within"),
        ({"uniform": {"low": 0}}, "missing argument 'high'"),
        ({"uniform": {"low": 0, "hi": 1}}, "unknown argument 'hi'"),
        ({"quniform": [0, 10, 0]}, "quniform needs q > 0"),
        ({"quniform": [0, 10, -1]}, "quniform needs q > 0"),
        ({"quniform": [10, 0, 1]}, "quniform needs low < high"),
        ({"loguniform": [0, 1]}, "loguniform needs 0 < low < high, got [0, 1]"),
        ({"loguniform": [-1, 1]}, "loguniform needs 0 < low < high"),
        ({"loguniform": [1e-1, 1e-4]}, "loguniform needs 0 < low < high"),
        ({"qloguniform": [0, 10, 1]}, "qloguniform needs 0 < low < high"),
        ({"qloguniform": [1, 10, 0]}, "qloguniform needs q > 0"),
        ({"randint": [0.5, 3]}, "randint needs integer bounds"),
        ({"randint": [3, 3]}, "randint needs low < high"),
        ({"randint": [5]}, "randint needs 2 arguments"),
        ({"uniformint": [1, 2.5]}, "uniformint needs integer bounds"),
        ({"uniformint": [4, 1]}, "uniformint needs low < high"),
        ({"normal": [0, 0]}, "normal needs sigma > 0"),
        ({"normal": [0, -1]}, "normal needs sigma > 0"),
        ({"qnormal": [0, 1, 0]}, "qnormal needs q > 0"),
        ({"lognormal": [0, 0]}, "lognormal needs sigma > 0"),
        ({"lognormal": [1000, 1]}, "of the log"),
        ({"qlognormal": [0, 1, -2]}, "qlognormal needs q > 0"),
        ({"choice": []}, "choice needs at least one option"),
        ({"choice": {}}, "choice needs at least one option"),
        ({"choice": 3}, "choice needs a list of options or a mapping"),
        ({"pchoice": []}, "pchoice needs at least one option"),
        ({"pchoice": [[0.5, 1], [0.4, 2]]}, "pchoice probabilities must sum to 1, got 0.9"),
        ({"pchoice": [[0, 1], [1, 2]]}, "pchoice needs probabilities with 0 < p <= 1"),
        ({"pchoice": [[-0.5, 1], [1.5, 2]]}, "pchoice needs probabilities"),
        ({"pchoice": [[True, 1]]}, "got true for option 0"),
        ({"pchoice": [1, 2]}, "pchoice option 0 needs [probability, option], got 1"),
        ({"pchoice": [[0.5, 1, 2]]}, "pchoice option 0 needs [probability, option]"),
        ({"pchoice": {"a": [1, 2]}}, "pchoice needs a list"),
    ],
)
def test_bad_distribution(written: Any, fragment: str) -> None:
    assert_error(function_doc({"v": written}), "params.v", fragment)


def test_pchoice_sum_tolerance() -> None:
    spec_of({"v": {"pchoice": [[0.1, 1], [0.2, 2], [0.7000001, 3]]}})
    assert_error(function_doc({"v": {"pchoice": [[0.1, 1], [0.2, 2], [0.70001, 3]]}}), "params.v", "sum to 1")


def test_pchoice_frequencies_match_probabilities() -> None:
    spec = spec_of({"v": {"pchoice": [[0.1, "a"], [0.6, "b"], [0.3, "c"]]}})
    values = [spec.sample(s)["params"]["v"] for s in range(2000)]
    for option, p in (("a", 0.1), ("b", 0.6), ("c", 0.3)):
        assert abs(values.count(option) / len(values) - p) < 0.04, (option, values.count(option))


def test_choice_frequencies_are_uniform() -> None:
    spec = spec_of({"v": {"choice": ["a", "b", "c", "d"]}})
    values = [spec.sample(s)["params"]["v"] for s in range(2000)]
    for option in "abcd":
        assert abs(values.count(option) / 2000 - 0.25) < 0.04


def test_errors_in_several_distributions_are_reported_together() -> None:
    errors = errors_of(
        function_doc(
            {
                "a": {"uniform": [2, 1]},
                "b": {"loguniform": [0, 1]},
                "c": {"choice": [{"quniform": [0, 1, 0]}, {"normal": [0, 0]}]},
            }
        )
    )
    assert set(errors) == {"params.a", "params.b", "params.c[0]", "params.c[1]"}


def test_quantised_range_includes_rounding() -> None:
    # quniform [1, 10, 4] can give 0 and 12 (hyperopt rounds the draw); integer rules see that
    from spacekit import model_doc

    doc = model_doc(training={"epochs": {"quniform": [1, 10, 4]}})
    assert_error(doc, "training.epochs", "can give 0")
    spec_of({"v": {"quniform": [1, 10, 4]}})
    values = {spec_of({"v": {"quniform": [1, 10, 4]}}).sample(s)["params"]["v"] for s in range(200)}
    assert values <= {0, 4, 8, 12} and min(values) >= 0
    assert math.isfinite(max(values))
