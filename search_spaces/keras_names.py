"""Names the service accepts for Keras objects, as plain strings (no Keras import).

The worker maps these names to ``keras.layers.<name>``, ``keras.optimizers.<name>`` and
``keras.optimizers.schedules.<name>``; the composite blocks are built by our own code, so their
arguments are checked here (see COMPOSITE_BLOCK_ARGUMENTS).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

LAYER_TYPES: frozenset[str] = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "SeparableConv2D",
        "DepthwiseConv2D",
        "Conv2DTranspose",
        "MaxPooling2D",
        "AveragePooling2D",
        "MaxPooling1D",
        "AveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Dense",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "Flatten",
        "Reshape",
        "BatchNormalization",
        "LayerNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "Softmax",
        "ZeroPadding2D",
        "Cropping2D",
        "UpSampling2D",
        "ActivityRegularization",
    }
)
"""Keras layer classes a model may use (``keras.layers.<name>(**kwargs)``)."""

COMPOSITE_BLOCKS: frozenset[str] = frozenset({"ResidualBlock", "InceptionBlock"})
"""Blocks built by Hyperhive's worker from several Keras layers."""

REQUIRED = object()
"""Marks a composite block argument without a default."""

COMPOSITE_BLOCK_ARGUMENTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "ResidualBlock": MappingProxyType(
            {
                "filters": REQUIRED,
                "kernel_size": 3,
                "strides": 1,
                "batch_norm": True,
                "activation": "relu",
            }
        ),
        "InceptionBlock": MappingProxyType(
            {
                "filters_1x1": REQUIRED,
                "filters_3x3_reduce": REQUIRED,
                "filters_3x3": REQUIRED,
                "filters_5x5_reduce": REQUIRED,
                "filters_5x5": REQUIRED,
                "filters_pool": REQUIRED,
                "batch_norm": False,
                "activation": "relu",
            }
        ),
    }
)
"""Each composite block's arguments with their defaults (REQUIRED: no default).

A block may also have a ``name`` (string). Every ``filters*``, ``kernel_size`` and ``strides`` is
an integer >= 1, ``batch_norm`` a boolean, ``activation`` a Keras activation name.
"""

OPTIMIZER_TYPES: frozenset[str] = frozenset(
    {"SGD", "Adagrad", "RMSprop", "Adam", "Adadelta", "AdamW", "Nadam", "Adamax", "Lion", "Ftrl"}
)
"""Keras optimizer classes (``keras.optimizers.<name>(**kwargs)``)."""

LR_SCHEDULES: frozenset[str] = frozenset(
    {"ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay", "InverseTimeDecay", "PolynomialDecay"}
)
"""Keras learning-rate schedules (``keras.optimizers.schedules.<name>(**kwargs)``)."""

DATASET_NAMES: frozenset[str] = frozenset({"digits", "mnist", "fashion_mnist", "cifar10", "cifar100"})
"""Built-in datasets (``digits`` is scikit-learn's 8x8 digits, the others keras.datasets)."""
