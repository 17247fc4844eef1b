"""What the submit-time checks accept, Keras builds: a document using many Keras arguments, names and
aliases validates, and every sampled configuration builds (layers, optimizer, schedule, loss)."""

from __future__ import annotations

from typing import Any

import pytest

from hyperhive.search_spaces import keras_table, validate

pytestmark = pytest.mark.slow  # imports Keras

PLACEHOLDERS = {
    "units": 4,
    "filters": 4,
    "kernel_size": 3,
    "pool_size": 2,
    "rate": 0.1,
    "stddev": 0.1,
    "activation": "relu",
    "target_shape": [64],
}
DOC: dict[str, Any] = {
    "name": "kw",
    "max_trials": 5,
    "dataset": {"name": "digits"},
    "model": {
        "layers": [
            {
                "type": "Conv2D",
                "filters": {"choice": [4, 8]},
                "kernel_size": [3, 3],
                "padding": "same",
                "dilation_rate": 1,
                "use_bias": {"choice": [True, False]},
                "kernel_initializer": {"choice": ["he_normal", "GlorotUniform", "normal"]},
                "kernel_regularizer": {"choice": ["l2", "l1l2", None]},
                "kernel_constraint": {"choice": ["max_norm", "NonNeg", None]},
                "activation": {"choice": ["relu", "gelu", None]},
                "name": "conv_a",
            },
            {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 1e-3, "axis": -1, "center": True},
            {"type": "LeakyReLU", "negative_slope": 0.1},
            {"choice": [None, {"type": "SpatialDropout2D", "rate": 0.1, "seed": 3}]},
            {"type": "ZeroPadding2D", "padding": [[1, 0], [0, 1]]},
            {"type": {"choice": ["MaxPooling2D", "AveragePooling2D"]}, "pool_size": 2, "strides": None},
            {"type": "ResidualBlock", "filters": 8, "activation": "elu", "name": "res"},
            {"type": "GlobalAveragePooling2D", "keepdims": False},
            {"type": "Dense", "units": 16, "activation": "swish", "bias_initializer": "zeros"},
            {"type": "Dropout", "rate": {"literal": 0.25}},
        ]
    },
    "training": {
        "loss": {"choice": ["categorical_crossentropy", "sparse_categorical_crossentropy", "mse"]},
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
                {"type": "Adam", "learning_rate": {"type": "CosineDecay", "initial_learning_rate": 0.01}},
            ]
        },
    },
}


def test_every_sampled_configuration_builds() -> None:
    from hyperhive.workers.backend import import_keras
    from hyperhive.workers.model_builder import build_model
    from hyperhive.workers.optimizers import build_loss, build_optimizer

    keras = import_keras()
    spec = validate(DOC)
    for seed in range(12):
        config = spec.sample(seed)
        build_model(config["model"], (8, 8, 1), 10)
        build_optimizer(keras, config["training"]["optimizer"], total_steps=100)
        build_loss(keras, config["training"]["loss"])


@pytest.mark.parametrize("layer_type", sorted(keras_table.LAYERS))
def test_each_allowed_layer_with_its_required_arguments_builds(layer_type: str) -> None:
    from hyperhive.workers.backend import import_keras
    from hyperhive.workers.model_builder import make_layer

    spec = {"type": layer_type, **{k: PLACEHOLDERS[k] for k in keras_table.LAYERS[layer_type]["required"]}}
    validate({"name": "one", "max_trials": 1, "model": {"layers": [spec]}})
    make_layer(import_keras(), spec)
