"""Property tests: whatever a user sends, the answer is a SearchSpec or a SpecError, never a crash.

Set SEARCH_SPACES_FUZZ_EXAMPLES (default 200) to search harder.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hyperhive.search_spaces import DISTRIBUTION_NAMES, SearchSpec, SpecError, load, parse_text, validate

EXAMPLES = int(os.environ.get("SEARCH_SPACES_FUZZ_EXAMPLES", "200"))
KEYS = sorted(
    DISTRIBUTION_NAMES
    | {
        "literal",
        "type",
        "layers",
        "units",
        "rate",
        "filters",
        "optimizer",
        "learning_rate",
        "epochs",
        "low",
        "high",
        "q",
        "mu",
        "sigma",
        "name",
        "x",
        "",
        "a b",
    }
)
TYPES = [
    "Dense",
    "Conv2D",
    "Dropout",
    "Flatten",
    "ResidualBlock",
    "InceptionBlock",
    "Adam",
    "Lambda",
    "CosineDecay",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 0.5, -1, 1e-4, 1e15, 1e16, *TYPES]),
    st.text(max_size=8),
)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=4),
        st.builds(lambda k, v: {k: v}, st.sampled_from(sorted(DISTRIBUTION_NAMES | {"literal"})), children),
        st.builds(lambda v: {"pchoice": [[0.5, v], [0.5, v]]}, children),
        st.builds(lambda t, v: {"type": t, "units": v}, st.sampled_from(TYPES), children),
    )


values = st.recursive(scalars, extend, max_leaves=25)
sections = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["a", "", "x y", 3]),
        "max_trials": st.sampled_from([1, 0, 10, 10**6, "5", None]),
        "algorithm": st.sampled_from(["tpe", "random", "anneal", "x", {"type": "tpe", "gamma": 0.5}])
        | values,
        "objective": st.sampled_from([{"function": "m:f"}, {"metric": "loss"}, None]) | values,
        "dataset": st.sampled_from([{"name": "digits"}, {"path": "a.npz"}]) | values,
        "model": st.builds(lambda layers: {"layers": layers}, st.lists(values, max_size=4)) | values,
        "training": values,
        "params": values,
        "seed": values,
        "colour": values,
    },
)


def _ok(spec: SearchSpec) -> None:
    """A validated spec compiles, samples JSON-serialisable configs and round-trips."""
    event("valid")
    config = spec.sample(0)
    json.dumps(config, allow_nan=False)
    assert validate(spec.to_document()) == spec


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections)
def test_validate_never_crashes(doc: dict[str, Any]) -> None:
    try:
        spec = validate(doc)
    except SpecError as exc:
        assert exc.errors and all(e.loc and e.msg for e in exc.errors)
        return
    _ok(spec)


@settings(max_examples=EXAMPLES, deadline=None)
@given(values)
def test_params_sections_never_crash(params: Any) -> None:
    doc = {"name": "f", "max_trials": 3, "objective": {"function": "m:f"}, "params": params}
    try:
        spec = validate(doc)
    except SpecError:
        return
    _ok(spec)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.builds(lambda layers: {"layers": layers}, st.lists(values, min_size=1, max_size=4)), values)
def test_model_sections_never_crash(model: Any, training: Any) -> None:
    doc = {"name": "m", "max_trials": 3, "dataset": {"name": "digits"}, "model": model, "training": training}
    try:
        spec = validate(doc)
    except SpecError:
        return
    _ok(spec)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)), st.sampled_from([None, "yaml", "json"]))
def test_parse_text_never_crashes(text: str | bytes, fmt: str | None) -> None:
    try:
        doc = parse_text(text, fmt)
    except SpecError:
        return
    assert isinstance(doc, dict)
    json.dumps(doc, allow_nan=False)


yaml_fragments = st.sampled_from(
    [
        "name: a\n",
        "max_trials: 3\n",
        "params:\n",
        "  x: {uniform: [0, 1]}\n",
        "  y: {choice: [1, 2]}\n",
        "objective: {function: 'm:f'}\n",
        "  - &a [1, 2]\n",
        "  - *a\n",
        "  z: !!int '3'\n",
        "- 1\n",
        "{",
        "]",
        ": ",
        "? ",
        "'",
        '"',
        "\t",
        "&x ",
        "*x ",
        "<<: *x\n",
        "1e-4",
        "2024-01-01",
        "!!float x",
        "!!timestamp 2024-13-45",
        "!!int 99999999999999999999999999999999999999999999999999",
    ]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(yaml_fragments, max_size=12).map("".join))
def test_yaml_like_text_gives_spec_or_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        load(text)


# -- documents that are mostly valid, so that compiling and sampling get exercised too
numbers = st.one_of(st.integers(-3, 300), st.floats(-3, 300, allow_nan=False))
numeric_dists = st.builds(
    lambda name, args: {name: args},
    st.sampled_from(
        [
            "randint",
            "uniformint",
            "uniform",
            "quniform",
            "loguniform",
            "qloguniform",
            "normal",
            "qnormal",
            "lognormal",
            "qlognormal",
        ]
    ),
    st.lists(numbers, min_size=2, max_size=3).map(sorted),
)


def _hyper(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda options: {"choice": options}, st.lists(children, min_size=1, max_size=3)),
        st.builds(
            lambda options: {"choice": dict(zip(["a", "b", "c"], options, strict=False))},
            st.lists(children, min_size=1, max_size=3),
        ),
        st.builds(lambda a, b: {"pchoice": [[0.25, a], [0.75, b]]}, children, children),
        st.lists(children, max_size=2),
    )


hyper_values = st.recursive(
    st.one_of(numbers, numeric_dists, st.sampled_from(["relu", None, True])), _hyper, max_leaves=8
)
layers = st.fixed_dictionaries(
    {"type": st.sampled_from(["Dense", "Dropout", "Flatten", "Conv2D", "ResidualBlock"])},
    optional={"units": hyper_values, "rate": hyper_values, "filters": hyper_values, "padding": hyper_values},
)
layer_items = st.recursive(
    layers,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.builds(lambda a, b: {"choice": [None, a, [a, b]]}, children, children),
        st.builds(lambda a, b: {"choice": {"one": a, "two": b}}, children, children),
    ),
    max_leaves=6,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(layer_items, min_size=1, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "epochs": hyper_values,
            "batch_size": hyper_values,
            "optimizer": st.just({"type": "Adam", "learning_rate": {"loguniform": [1e-4, 1e-2]}}),
        },
    ),
    st.dictionaries(st.sampled_from(["x", "y", "z"]), hyper_values, max_size=3),
)
def test_mostly_valid_model_searches(layer_list: Any, training: Any, params: Any) -> None:
    doc = {
        "name": "m",
        "max_trials": 3,
        "dataset": {"name": "digits"},
        "model": {"layers": layer_list},
        "training": training,
        "params": params,
    }
    try:
        spec = validate(doc)
    except SpecError:
        return
    _ok(spec)
    labels = spec.parameter_labels
    assert len(labels) == len(set(labels))
    for seed in range(3):
        config = spec.sample(seed)
        assert "layers" in config["model"]
