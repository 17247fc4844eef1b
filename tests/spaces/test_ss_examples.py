"""The shipped example documents validate, sample, and mean what their comments say; objectives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hyperhive import demo_objectives as objectives
from hyperhive import search_spaces
from hyperhive.search_spaces import flatten_layers, load, parse_text

EXAMPLES = sorted((Path(search_spaces.__file__).parent / "examples").glob("*.yaml"))


def test_the_examples_are_there() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "lecture-cnn.yaml",
        "conditional-block.yaml",
        "architecture-swap.yaml",
        "function-objective.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_samples(path: Path) -> None:
    spec = load(path.read_text())
    assert spec.name == path.stem or spec.objective_function
    assert load(path.read_bytes(), "application/yaml") == spec
    assert load(json.dumps(parse_text(path.read_text())), "json") == spec
    for seed in range(25):
        config = spec.sample(seed)
        json.dumps(config, allow_nan=False)
        if spec.model is not None:
            layers = flatten_layers(config["model"]["layers"])
            assert layers and all(isinstance(layer, dict) and "type" in layer for layer in layers)


def test_lecture_cnn() -> None:
    spec = load((EXAMPLES[0].parent / "lecture-cnn.yaml").read_text())
    assert (spec.algorithm, spec.max_trials, spec.objective_metric, spec.objective_mode) == (
        "tpe",
        20,
        "val_accuracy",
        "max",
    )
    assert spec.dataset == {"name": "digits"}
    config = spec.sample(0)
    types = [layer["type"] for layer in config["model"]["layers"]]
    assert types == ["Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dropout"]
    optimizers = {spec.sample(s)["training"]["optimizer"]["type"] for s in range(60)}
    assert optimizers == {"Adam", "SGD", "RMSprop", "Adadelta"}


def test_conditional_block_appears_or_not() -> None:
    spec = load((EXAMPLES[0].parent / "conditional-block.yaml").read_text())
    blocks = [spec.sample(s)["model"]["layers"][1] for s in range(40)]
    assert None in blocks
    chosen = [b for b in blocks if b is not None]
    assert chosen and all(b[0]["filters"] in (16, 32, 48, 64) for b in chosen)


def test_architecture_swap_uses_all_three() -> None:
    spec = load((EXAMPLES[0].parent / "architecture-swap.yaml").read_text())
    firsts = {spec.sample(s)["model"]["layers"][0][-1]["type"] for s in range(40)}
    assert firsts == {"MaxPooling2D", "ResidualBlock", "InceptionBlock"}


def test_function_objective_example() -> None:
    spec = load((EXAMPLES[0].parent / "function-objective.yaml").read_text())
    assert spec.objective_function == "hyperhive.demo_objectives:branin"
    assert (spec.objective_metric, spec.objective_mode) == ("loss", "min")
    for seed in range(20):
        params = spec.sample(seed)["params"]
        assert -5 <= params["x"] <= 10 and 0 <= params["y"] <= 15
        assert objectives.branin(params) >= 0.397


def test_objectives() -> None:
    assert math.isclose(objectives.branin({"x": math.pi, "y": 2.275}), 0.397887, abs_tol=1e-5)
    assert math.isclose(objectives.quadratic({"a": 0.3, "b": {"c": [1.3, True, "s"]}}), 1.0)
    result = objectives.conditional_toy({"a": 0.3, "branch": None})
    assert result == {"loss": 0.01, "extra": {"n_numbers": 1}}
