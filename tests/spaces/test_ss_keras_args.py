"""A user's Keras mistakes are caught at submit, all at once, each at its path with a "did you mean":
layer, block, optimizer and schedule arguments, activation/initializer/regularizer/constraint/loss names,
argument kinds, early_stopping.monitor and the objective metric (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest
from spacekit import assert_error, errors_of, function_doc, model_doc

from hyperhive.search_spaces import TRAINING_DEFAULTS, SpecError, keras_table, load, validate
from hyperhive.search_spaces.keras_names import (
    COMPOSITE_BLOCK_ARGUMENTS,
    COMPOSITE_BLOCKS,
    LAYER_TYPES,
    LR_SCHEDULES,
    OPTIMIZER_TYPES,
)
from hyperhive.search_spaces.metric_names import KERAS_OBJECTIVE_METRICS

FIRST_HOUR = """\
name: first-hour
max_trials: 5
objective: {metric: val_acc}
dataset: {name: digits}
model:
  layers:
    - {type: Conv2D, filters: 16, kernel_size: 3, activaton: relu}
    - {type: Flatten}
    - {type: Dense, untis: 32, activation: relux}
"""


def test_the_first_hour_document_gives_its_four_mistakes_at_once() -> None:
    with pytest.raises(SpecError) as info:
        load(FIRST_HOUR)
    got = {e.loc: e.msg for e in info.value.errors}
    assert got == {
        "model.layers[0].activaton": "unknown argument for Conv2D; did you mean 'activation'?",
        "model.layers[2].untis": "unknown argument for Dense; did you mean 'units'?",
        "model.layers[2].activation": "unknown activation 'relux'; did you mean 'relu'?",
        "objective.metric": (
            "unknown metric 'val_acc'; did you mean 'val_accuracy'? (known: "
            + ", ".join(KERAS_OBJECTIVE_METRICS)
            + ")"
        ),
    }
    # the misspelt required `units` is reported once, as the misspelling
    assert "model.layers[2].units" not in got


def layer(**kw: Any) -> dict[str, Any]:
    return model_doc([kw])


@pytest.mark.parametrize(
    ("doc", "loc", "fragment"),
    [
        # every option of a choice is checked, at the option's path
        (
            layer(type="Dense", units=8, activation={"choice": ["relu", "relux"]}),
            "model.layers[0].activation[1]",
            "unknown activation 'relux'; did you mean 'relu'?",
        ),
        (
            layer(type="Dense", units=8, activation={"choice": {"a": "tanh", "b": "sigmod"}}),
            "model.layers[0].activation.b",
            "did you mean 'sigmoid'?",
        ),
        (
            layer(type="Dense", units=8, activation={"pchoice": [[0.5, "relu"], [0.5, "eluu"]]}),
            "model.layers[0].activation[1]",
            "did you mean 'elu'?",
        ),
        # the literal escape is a value like any other
        (
            layer(type="Dense", units=8, activation={"literal": "relux"}),
            "model.layers[0].activation",
            "unknown activation 'relux'",
        ),
        (
            layer(type="Dense", units=8, activation=3),
            "model.layers[0].activation",
            "must be an activation name or null, got 3",
        ),
        (
            layer(type="Dense", units=8, activation={"uniform": [0, 1]}),
            "model.layers[0].activation",
            "not a uniform distribution",
        ),
        # conditional layers: a choice with null, a named set of layers
        (
            model_doc([{"choice": [None, {"type": "Dense", "untis": 3}]}]),
            "model.layers[0][1].untis",
            "unknown argument for Dense; did you mean 'units'?",
        ),
        (
            model_doc([{"choice": {"none": None, "extra": [{"type": "Conv2D", "filters": 8, "kernel": 3}]}}]),
            "model.layers[0].extra[0].kernel",
            "unknown argument for Conv2D; did you mean 'kernel_size'?",
        ),
        # a choice of layer types: each argument must suit each type
        (
            layer(type={"choice": ["MaxPooling2D", "GlobalAveragePooling2D"]}, pool_size=2),
            "model.layers[0].pool_size",
            "unknown argument for GlobalAveragePooling2D",
        ),
        # missing required arguments
        (layer(type="Dense"), "model.layers[0].units", "required by Dense"),
        (layer(type="Conv2D", filters=8), "model.layers[0].kernel_size", "required by Conv2D"),
        (layer(type="Activation"), "model.layers[0].activation", "required by Activation"),
        # no close name: the accepted arguments are listed
        (layer(type="Flatten", units=3), "model.layers[0].units", "unknown argument for Flatten; it takes"),
        # initializer, regularizer, constraint names
        (
            layer(type="Dense", units=8, kernel_initializer="glorot_unifrom"),
            "model.layers[0].kernel_initializer",
            "unknown initializer 'glorot_unifrom'; did you mean 'glorot_uniform'?",
        ),
        (
            layer(type="Dense", units=8, kernel_initializer="He_Normal"),
            "model.layers[0].kernel_initializer",
            "did you mean 'he_normal'?",
        ),
        (
            layer(type="Conv2D", filters=8, kernel_size=3, kernel_regularizer="l3"),
            "model.layers[0].kernel_regularizer",
            "unknown regularizer 'l3'",
        ),
        (
            layer(type="Dense", units=8, kernel_constraint="maxnorm"),
            "model.layers[0].kernel_constraint",
            "did you mean 'MaxNorm'?",
        ),
        # value kinds read from Keras's defaults
        (
            layer(type="Dense", units=8, use_bias="yes"),
            "model.layers[0].use_bias",
            "must be true or false, got 'yes'",
        ),
        (
            layer(type="Dense", units=8, use_bias={"choice": [True, 0]}),
            "model.layers[0].use_bias[1]",
            "must be true or false, got 0",
        ),
        (
            layer(type="Conv2D", filters=8, kernel_size=3, groups=1.5),
            "model.layers[0].groups",
            "must be an integer or a list of integers, got 1.5",
        ),
        (
            layer(type="Conv2D", filters=8, kernel_size=3, dilation_rate={"uniform": [1, 3]}),
            "model.layers[0].dilation_rate",
            "gives floats",
        ),
        (
            layer(type="Conv2D", filters=8, kernel_size=3, padding=1),
            "model.layers[0].padding",
            "must be a string, got 1",
        ),
        (
            layer(type="BatchNormalization", momentum="high"),
            "model.layers[0].momentum",
            "must be a number, got 'high'",
        ),
        # composite blocks
        (
            layer(type="ResidualBlock", filtres=8),
            "model.layers[0].filtres",
            "unknown argument for ResidualBlock; did you mean 'filters'?",
        ),
        (
            layer(type="ResidualBlock", filters=8, activation="relux"),
            "model.layers[0].activation",
            "unknown activation 'relux'; did you mean 'relu'?",
        ),
    ],
)
def test_model_mistakes(doc: dict[str, Any], loc: str, fragment: str) -> None:
    assert_error(doc, loc, fragment)


def test_a_misspelt_block_argument_is_one_error() -> None:
    assert errors_of(layer(type="ResidualBlock", filtres=8)) == {
        "model.layers[0].filtres": "unknown argument for ResidualBlock; did you mean 'filters'?"
    }


def training(**kw: Any) -> dict[str, Any]:
    return model_doc(training=kw)


@pytest.mark.parametrize(
    ("doc", "loc", "fragment"),
    [
        (
            training(optimizer={"type": "Adam", "beta1": 0.9}),
            "training.optimizer.beta1",
            "unknown argument for Adam; did you mean 'beta_1'?",
        ),
        (
            training(optimizer={"type": "SGD", "nesterov": "yes"}),
            "training.optimizer.nesterov",
            "must be true or false, got 'yes'",
        ),
        (
            training(optimizer={"type": "SGD", "momentum": "lots"}),
            "training.optimizer.momentum",
            "must be a number, got 'lots'",
        ),
        (
            training(
                optimizer={"choice": {"adam": {"type": "Adam"}, "sgd": {"type": "SGD", "momentun": 0.9}}}
            ),
            "training.optimizer.sgd.momentun",
            "unknown argument for SGD; did you mean 'momentum'?",
        ),
        (
            training(optimizer={"type": "SGD", "decay": 0.1}),
            "training.optimizer.decay",
            "unknown argument for SGD",
        ),
        (
            training(
                optimizer={
                    "type": "Adam",
                    "learning_rate": {"type": "CosineDecay", "initial_learning_rate": 0.1, "alpah": 0.1},
                }
            ),
            "training.optimizer.learning_rate.alpah",
            "unknown argument for CosineDecay; did you mean 'alpha'?",
        ),
        (
            training(
                optimizer={
                    "type": "Adam",
                    "learning_rate": {"type": "ExponentialDecay", "initial_learning_rate": 0.1},
                }
            ),
            "training.optimizer.learning_rate.decay_rate",
            "required by ExponentialDecay",
        ),
        (
            training(
                optimizer={
                    "type": "Adam",
                    "learning_rate": {
                        "choice": [
                            0.01,
                            {"type": "PolynomialDecay", "initial_learning_rate": 0.1, "cycle": "no"},
                        ]
                    },
                }
            ),
            "training.optimizer.learning_rate[1].cycle",
            "must be true or false",
        ),
        (
            training(loss="categorical_crossentropyy"),
            "training.loss",
            "unknown loss 'categorical_crossentropyy'; did you mean 'categorical_crossentropy'?",
        ),
        (
            training(loss={"choice": ["sparse_categorical_crossentropy", "focal"]}),
            "training.loss[1]",
            "unknown loss 'focal'",
        ),
        (
            training(early_stopping={"monitor": "val_acc"}),
            "training.early_stopping.monitor",
            "unknown metric 'val_acc'; did you mean 'val_accuracy'?",
        ),
    ],
)
def test_training_mistakes(doc: dict[str, Any], loc: str, fragment: str) -> None:
    assert_error(doc, loc, fragment)


def test_schedules_need_no_decay_steps_the_worker_fills_in() -> None:
    for schedule in ("ExponentialDecay", "InverseTimeDecay"):
        lr = {"type": schedule, "initial_learning_rate": 0.1, "decay_rate": 0.5}
        validate(training(optimizer={"type": "SGD", "learning_rate": lr}))
    lr = {"type": "CosineDecay", "initial_learning_rate": 0.1}
    validate(training(optimizer={"type": "SGD", "learning_rate": lr}))


def test_objective_metrics() -> None:
    for metric in KERAS_OBJECTIVE_METRICS:
        if not metric.startswith("test_"):
            assert validate(model_doc(objective={"metric": metric})).objective_metric == metric
    assert_error(
        model_doc(objective={"metric": "test_accuracy"}),
        "objective.metric",
        "test_accuracy is only reported with dataset.test: true",
    )
    spec = validate(model_doc(objective={"metric": "test_f1"}, dataset={"name": "digits", "test": True}))
    assert spec.objective_metric == "test_f1" and spec.maximize
    assert_error(model_doc(objective={"metric": "auc"}), "objective.metric", "unknown metric 'auc' (known: ")
    # a function search reports what its function returns: any name
    objective = {"function": "hyperhive.demo_objectives:quadratic", "metric": "val_acc"}
    assert validate(function_doc({"x": 1}, objective=objective)).objective_metric == "val_acc"


def test_valid_keras_arguments_are_accepted() -> None:
    doc = model_doc(
        [
            {
                "type": "Conv2D",
                "filters": {"choice": [8, 16]},
                "kernel_size": [3, 3],
                "strides": 1,
                "padding": "same",
                "dilation_rate": [1, 1],
                "use_bias": {"choice": [True, False]},
                "kernel_initializer": {"choice": ["he_normal", "GlorotUniform"]},
                "kernel_regularizer": "l2",
                "bias_constraint": None,
                "activation": None,
                "name": "conv_a",
                "input_shape": [8, 8, 1],
            },
            {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 1e-3, "axis": -1, "center": True},
            {"type": "LeakyReLU", "negative_slope": 0.1},
            {"choice": [None, {"type": "SpatialDropout2D", "rate": 0.1, "seed": 3}]},
            {"type": "ZeroPadding2D", "padding": [[1, 0], [0, 1]]},
            {"type": {"choice": ["MaxPooling2D", "AveragePooling2D"]}, "pool_size": 2, "padding": "same"},
            {"type": "ResidualBlock", "filters": 8, "activation": "elu", "name": "res"},
            {"type": "GlobalAveragePooling2D", "keepdims": False},
            {"type": "Dense", "units": 16, "activation": "gelu", "kernel_constraint": "max_norm"},
            {"type": "Dropout", "rate": {"literal": 0.25}},
        ],
        training={
            "loss": {"choice": ["categorical_crossentropy", "sparse_categorical_crossentropy"]},
            "early_stopping": {"monitor": "val_accuracy", "patience": 2, "mode": "max"},
            "optimizer": {
                "choice": [
                    {"type": "AdamW", "weight_decay": 0.01, "amsgrad": True, "clipnorm": 1.0},
                    {"type": "SGD", "momentum": 0.9, "nesterov": True, "learning_rate": 0.1},
                    {
                        "type": "RMSprop",
                        "learning_rate": {
                            "type": "PiecewiseConstantDecay",
                            "boundaries": [100, 200],
                            "values": [0.1, 0.01, 0.001],
                        },
                    },
                ]
            },
        },
        objective={"metric": "val_loss"},
    )
    validate(doc)


def test_the_table_covers_every_allowed_name() -> None:
    assert set(keras_table.LAYERS) == set(LAYER_TYPES)
    assert set(keras_table.OPTIMIZERS) == set(OPTIMIZER_TYPES)
    assert set(keras_table.SCHEDULES) == set(LR_SCHEDULES)
    assert TRAINING_DEFAULTS["loss"] in keras_table.LOSSES
    for block in COMPOSITE_BLOCKS:
        assert COMPOSITE_BLOCK_ARGUMENTS[block]["activation"] in keras_table.ACTIVATIONS
    assert {"relu", "softmax", "tanh"} <= set(keras_table.ACTIVATIONS)
    assert "Keras" in (keras_table.__doc__ or "") and "gen_keras_table.py" in (keras_table.__doc__ or "")


def test_median_pruning_needs_a_metric_known_after_every_epoch() -> None:
    pruning = {"pruning": {"type": "median"}}
    assert_error(
        model_doc(objective={"metric": "train_time"}, training=pruning),
        "objective.metric",
        "training.pruning compares the objective after every epoch, but train_time is known only at the end",
    )
    for metric in ("val_loss", "val_f1"):
        validate(model_doc(objective={"metric": metric}, training=pruning))
    validate(model_doc(objective={"metric": "train_time"}, training={"pruning": {"type": "none"}}))


def test_augmentation_matches_keras() -> None:
    from hyperhive.search_spaces.training_section import _AUGMENTATION

    flip = _AUGMENTATION["flip"]
    assert set(flip.choices) == set(keras_table.FLIP_MODES)  # type: ignore[attr-defined]
    # the keyword arguments workers/model_builder.augmentation_layers passes
    used = {
        "RandomFlip": {"mode", "seed", "name"},
        "RandomRotation": {"factor", "seed", "name"},
        "RandomTranslation": {"height_factor", "width_factor", "seed", "name"},
        "RandomZoom": {"height_factor", "seed", "name"},
        "RandomContrast": {"factor", "value_range", "seed", "name"},
    }
    for layer_type, arguments in used.items():
        assert arguments <= set(keras_table.AUGMENTATION_LAYERS[layer_type]["arguments"]), layer_type


def test_null_where_keras_defaults_to_none() -> None:
    # pooling's strides default to None (= pool_size); a convolution's do not
    validate(layer(type="MaxPooling2D", pool_size=2, strides=None))
    validate(layer(type="MaxPooling2D", pool_size=2, strides={"choice": [None, 1, [2, 2]]}))
    assert_error(
        layer(type="Conv2D", filters=8, kernel_size=3, strides=None),
        "model.layers[0].strides",
        "must be an integer >= 1 or a list of them, got null",
    )
    assert_error(layer(type="Dense", units=None), "model.layers[0].units", "must be an integer >= 1")


def test_keras_aliases_are_names_too() -> None:
    validate(training(loss="mse"))
    validate(layer(type="Dense", units=4, kernel_initializer="normal", kernel_regularizer="l1l2"))
    # Keras's get() refuses l1_l2 (a function, not a registered name): so does the check
    assert_error(
        layer(type="Dense", units=4, kernel_regularizer="l1_l2"),
        "model.layers[0].kernel_regularizer",
        "did you mean 'l1l2'?",
    )
