"""compile_space, labels, conditional spaces, the literal escape and config_from_vals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hyperopt import STATUS_OK, Trials, fmin, rand, space_eval
from hyperopt.base import Domain
from spacekit import model_doc, spec_of

from hyperhive.search_spaces import (
    MAX_PARAMETERS,
    SpecError,
    compile_space,
    config_from_vals,
    count_parameters,
    flatten_layers,
    parameter_labels,
    sample,
    validate,
)
from hyperhive.search_spaces.compiler import to_builtin

EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"

NESTED: dict[str, Any] = {
    "model": {
        "layers": [
            {"type": "Conv2D", "filters": {"choice": [16, 32]}, "kernel_size": 3},
            {"type": "Dropout", "rate": {"uniform": [0.1, 0.5]}},
            {
                "choice": [
                    None,
                    [{"type": "Dense", "units": {"uniformint": [8, 64]}}, {"type": "Dropout", "rate": 0.5}],
                ]
            },
            {
                "choice": {
                    "vgg": [{"type": "Conv2D", "filters": {"choice": [8, 16]}, "kernel_size": 3}],
                    "res": [{"type": "ResidualBlock", "filters": {"choice": [8, 16]}}],
                }
            },
        ]
    },
    "training": {
        "optimizer": {
            "choice": [
                {"type": "Adam", "learning_rate": {"loguniform": [1e-4, 1e-2]}},
                {
                    "type": "SGD",
                    "learning_rate": {"loguniform": [1e-3, 1e-1]},
                    "momentum": {"uniform": [0, 0.9]},
                },
            ]
        }
    },
}


def nested_spec() -> Any:
    return validate(model_doc(NESTED["model"]["layers"], training=NESTED["training"]))


def test_labels_are_paths() -> None:
    assert parameter_labels(nested_spec()) == [
        "model.layers[0].filters",
        "model.layers[1].rate",
        "model.layers[2]",
        "model.layers[2][1][0].units",
        "model.layers[3]",
        "model.layers[3].vgg[0].filters",
        "model.layers[3].res[0].filters",
        "training.optimizer",
        "training.optimizer[0].learning_rate",
        "training.optimizer[1].learning_rate",
        "training.optimizer[1].momentum",
    ]


def test_labels_quote_keys_that_are_not_identifiers() -> None:
    spec = spec_of(
        {"learning rate": {"uniform": [0, 1]}, "0": {"choice": {"a.b": {"x": {"uniform": [0, 1]}}}}}
    )
    assert parameter_labels(spec) == ['params["learning rate"]', 'params["0"]', 'params["0"]["a.b"].x']
    assert parameter_labels(spec_of({"été": {"uniform": [0, 1]}, 'q"': {"uniform": [0, 1]}})) == [
        'params["été"]',
        'params["q\\""]',
    ]


def test_space_has_the_present_sections() -> None:
    spec = nested_spec()
    assert set(spec.space) == {"model", "training"}
    assert set(compile_space(spec.document, sections=("training",))) == {"training"}
    assert set(spec_of({"x": 1}).space) == {"params"}


def test_inner_parameters_appear_only_in_their_branch() -> None:
    spec = nested_spec()
    seen_branches = set()
    for seed in range(60):
        config = spec.sample(seed)
        layers = config["model"]["layers"]
        extra = layers[2]
        assert extra is None or (isinstance(extra, list) and 8 <= extra[0]["units"] <= 64)
        (block,) = layers[3]
        assert block["type"] in ("Conv2D", "ResidualBlock")
        optimizer = config["training"]["optimizer"]
        if optimizer["type"] == "Adam":
            assert set(optimizer) == {"type", "learning_rate"}
        else:
            assert set(optimizer) == {"type", "learning_rate", "momentum"}
        seen_branches.add((extra is None, block["type"], optimizer["type"]))
        json.dumps(config, allow_nan=False)
    assert len(seen_branches) >= 6


def test_config_from_vals_follows_the_chosen_branches() -> None:
    spec = nested_spec()
    vals = {
        "model.layers[0].filters": 1,
        "model.layers[1].rate": 0.25,
        "model.layers[2]": 1,
        "model.layers[2][1][0].units": 17.0,
        "model.layers[3]": 0,
        "model.layers[3].vgg[0].filters": 0,
        "training.optimizer": 1,
        "training.optimizer[1].learning_rate": np.float64(0.01),
        "training.optimizer[1].momentum": 0.5,
    }
    config = config_from_vals(spec.space, vals)
    assert config == {
        "model": {
            "layers": [
                {"type": "Conv2D", "filters": 32, "kernel_size": 3},
                {"type": "Dropout", "rate": 0.25},
                [{"type": "Dense", "units": 17}, {"type": "Dropout", "rate": 0.5}],
                [{"type": "Conv2D", "filters": 8, "kernel_size": 3}],
            ]
        },
        "training": {"optimizer": {"type": "SGD", "learning_rate": 0.01, "momentum": 0.5}},
    }
    assert type(config["model"]["layers"][2][0]["units"]) is int
    assert type(config["training"]["optimizer"]["learning_rate"]) is float
    assert flatten_layers(config["model"]["layers"]) == [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3},
        {"type": "Dropout", "rate": 0.25},
        {"type": "Dense", "units": 17},
        {"type": "Dropout", "rate": 0.5},
        {"type": "Conv2D", "filters": 8, "kernel_size": 3},
    ]


def test_config_from_vals_takes_hyperopt_misc_vals_and_a_spec() -> None:
    spec = nested_spec()
    vals: dict[str, list[Any]] = {label: [] for label in spec.parameter_labels}
    vals.update(
        {
            "model.layers[0].filters": [0],
            "model.layers[1].rate": [0.3],
            "model.layers[2]": [np.int64(0)],
            "model.layers[3]": [1.0],
            "model.layers[3].res[0].filters": [1],
            "training.optimizer": [0],
            "training.optimizer[0].learning_rate": [0.001],
        }
    )
    config = config_from_vals(spec, vals)
    assert config["model"]["layers"][2] is None
    assert config["model"]["layers"][3] == [{"type": "ResidualBlock", "filters": 16}]
    assert config == spec.config_from_vals(vals)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"model.layers[1].rate": None}, "expected a number"),
        ({"training.optimizer": 2}, "option index must be an integer in [0, 2)"),
        ({"training.optimizer": 0.5}, "option index"),
        ({"training.optimizer": "0"}, "expected an option index"),
        ({"model.layers[1].rate": [0.1, 0.2]}, "expected one value"),
    ],
)
def test_config_from_vals_rejects_bad_vals(change: dict[str, Any], fragment: str) -> None:
    spec = nested_spec()
    vals: dict[str, Any] = {
        "model.layers[0].filters": 0,
        "model.layers[1].rate": 0.3,
        "model.layers[2]": 0,
        "model.layers[3]": 0,
        "model.layers[3].vgg[0].filters": 0,
        "training.optimizer": 0,
        "training.optimizer[0].learning_rate": 0.001,
    }
    config_from_vals(spec.space, vals)
    vals.update(change)
    with pytest.raises(
        ValueError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        config_from_vals(spec.space, vals)


def test_config_from_vals_names_a_missing_label() -> None:
    spec = nested_spec()
    with pytest.raises(ValueError, match=r"no value for .*'model.layers\[0\].filters'"):
        config_from_vals(spec.space, {})


def test_literal_escape() -> None:
    spec = spec_of(
        {
            "a": {"literal": {"choice": [1, 2]}},
            "b": {"literal": [{"uniform": [0, 1]}]},
            "c": {"choice": [{"literal": {"uniform": "x"}}]},
            "d": {"literal": None},
            "e": {"literal": 1, "other": 2},
        }
    )
    assert parameter_labels(spec) == ["params.c"]
    config = spec.sample(0)["params"]
    assert config == {
        "a": {"choice": [1, 2]},
        "b": [{"uniform": [0, 1]}],
        "c": {"uniform": "x"},
        "d": None,
        "e": {"literal": 1, "other": 2},
    }


def test_configs_are_fresh_copies() -> None:
    spec = spec_of({"a": {"literal": {"k": [1]}}, "x": {"uniform": [0, 1]}})
    first = spec.sample(0)
    first["params"]["a"]["k"].append(2)
    assert spec.sample(0)["params"]["a"] == {"k": [1]}


def test_constant_lists_stay_lists() -> None:
    spec = spec_of({"k": [3, 3], "nested": [[1, {"x": {"choice": [[1, 2]]}}]]})
    config = spec.sample(1)["params"]
    assert config == {"k": [3, 3], "nested": [[1, {"x": [1, 2]}]]}


def test_sample_takes_a_document_and_is_reproducible() -> None:
    doc = nested_spec().document
    assert sample(doc, 5) == sample(doc, 5)
    assert any(sample(doc, 5) != sample(doc, s) for s in range(6, 10))


def test_count_parameters_and_the_limit() -> None:
    assert count_parameters(nested_spec().document) == 11
    many = {f"p{i}": {"uniform": [0, 1]} for i in range(MAX_PARAMETERS)}
    assert len(spec_of(many).parameter_labels) == MAX_PARAMETERS
    many["one_more"] = {"uniform": [0, 1]}
    with pytest.raises(SpecError, match=f"more than {MAX_PARAMETERS} distributions"):
        spec_of(many)
    with pytest.raises(SpecError, match="more than"):
        compile_space({"params": many})


def test_compile_space_raises_spec_error_for_bad_distributions() -> None:
    with pytest.raises(SpecError) as info:
        compile_space({"params": {"a": {"uniform": [1, 0]}}, "training": {"b": {"choice": []}}})
    assert {e.loc for e in info.value.errors} == {"params.a", "training.b"}


def test_flatten_layers() -> None:
    a, b, c = {"type": "A"}, {"type": "B"}, {"type": "C"}
    assert flatten_layers([a, None, [b, [c, None]], []]) == [a, b, c]


@pytest.mark.parametrize("algorithm", ["tpe", "anneal", "random"])
def test_hyperopt_optimises_over_the_space(algorithm: str) -> None:
    doc = model_doc(NESTED["model"]["layers"], training=NESTED["training"], algorithm=algorithm)
    spec = validate(doc)
    seen: list[dict[str, Any]] = []

    def objective(config: dict[str, Any]) -> dict[str, Any]:
        seen.append(config)
        return {"loss": float(len(json.dumps(config))), "status": STATUS_OK}

    trials = Trials()
    fmin(
        objective,
        spec.space,
        algo=spec.hyperopt_algo(),
        max_evals=30,
        trials=trials,
        rstate=np.random.default_rng(0),
        show_progressbar=False,
    )
    assert len(trials.trials) == 30
    for config, trial in zip(seen, trials.trials, strict=True):
        rebuilt = spec.config_from_vals(trial["misc"]["vals"])
        assert rebuilt == json.loads(json.dumps(rebuilt, allow_nan=False))
        assert json.loads(json.dumps(config, default=lambda o: o.item())) == json.loads(json.dumps(rebuilt))


@pytest.mark.parametrize("example", ["nested", *sorted(p.name for p in EXAMPLES.glob("*.yaml"))])
def test_config_from_vals_is_hyperopts_space_eval(example: str) -> None:
    """The evaluator config_from_vals uses gives what hyperopt's space_eval (rec_eval) gives, on
    random points of every example space, nested choices included."""
    spec = (
        nested_spec() if example == "nested" else validate(yaml.safe_load((EXAMPLES / example).read_text()))
    )
    domain = Domain(lambda _: 0.0, spec.space)
    for seed in range(60):
        vals = rand.suggest([seed], domain, Trials(), seed)[0]["misc"]["vals"]
        point = {k: v[0] for k, v in vals.items() if v}
        assert config_from_vals(spec.space, point) == to_builtin(space_eval(spec.space, point))
