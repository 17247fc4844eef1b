"""The composite blocks of the ``model`` section, built with Keras's functional API.

``ResidualBlock`` (He et al.): two ``kernel_size`` convolutions (the first with ``strides``), each
followed by batch normalisation when ``batch_norm``; a 1x1 projection on the shortcut when the shape
changes; the sum through ``activation``.

``InceptionBlock`` (GoogLeNet, v1): four parallel branches concatenated on the channel axis: 1x1; 1x1
reduce then 3x3; 1x1 reduce then 5x5; 3x3 max-pooling then a 1x1 projection (``filters_pool``).

Arguments and defaults are :data:`hyperhive.search_spaces.keras_names.COMPOSITE_BLOCK_ARGUMENTS`; an optional
``name`` prefixes the names of the block's layers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hyperhive.search_spaces.keras_names import COMPOSITE_BLOCK_ARGUMENTS, REQUIRED


class BlockError(ValueError):
    """A composite block's arguments are wrong; the message names the argument."""


def block_arguments(block: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The block's arguments with defaults filled in; :class:`BlockError` for unknown, missing or
    out-of-range ones."""
    table = COMPOSITE_BLOCK_ARGUMENTS[block]
    given = {k: v for k, v in spec.items() if k not in ("type", "name")}
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise BlockError(f"unknown argument(s) {', '.join(unknown)}; {block} takes {', '.join(table)}")
    args: dict[str, Any] = {}
    for key, default in table.items():
        if key not in given:
            if default is REQUIRED:
                raise BlockError(f"argument {key!r} is required")
            args[key] = default
            continue
        value = given[key]
        if key == "batch_norm":
            if not isinstance(value, bool):
                raise BlockError(f"argument 'batch_norm' must be true or false, got {value!r}")
        elif key == "activation":
            if not isinstance(value, str):
                raise BlockError(f"argument 'activation' must be an activation name, got {value!r}")
        elif (
            isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1
        ):
            raise BlockError(f"argument {key!r} must be an integer >= 1, got {value!r}")
        else:
            value = int(value)
        args[key] = value
    return args


def _namer(prefix: str | None) -> Callable[[str], str | None]:
    return lambda part: f"{prefix}_{part}" if prefix else None


def residual_block(keras: Any, x: Any, spec: Mapping[str, Any]) -> Any:
    """Apply a ResidualBlock to tensor ``x``."""
    a = block_arguments("ResidualBlock", spec)
    name = _namer(spec.get("name"))
    layers = keras.layers
    bn = a["batch_norm"]
    y = layers.Conv2D(
        a["filters"],
        a["kernel_size"],
        strides=a["strides"],
        padding="same",
        use_bias=not bn,
        name=name("conv1"),
    )(x)
    if bn:
        y = layers.BatchNormalization(name=name("bn1"))(y)
    y = layers.Activation(a["activation"], name=name("act1"))(y)
    y = layers.Conv2D(a["filters"], a["kernel_size"], padding="same", use_bias=not bn, name=name("conv2"))(y)
    if bn:
        y = layers.BatchNormalization(name=name("bn2"))(y)
    shortcut = x
    if a["strides"] != 1 or x.shape[-1] != a["filters"]:
        shortcut = layers.Conv2D(
            a["filters"], 1, strides=a["strides"], padding="same", use_bias=not bn, name=name("proj")
        )(x)
        if bn:
            shortcut = layers.BatchNormalization(name=name("proj_bn"))(shortcut)
    y = layers.Add(name=name("add"))([y, shortcut])
    return layers.Activation(a["activation"], name=name("out"))(y)


def inception_block(keras: Any, x: Any, spec: Mapping[str, Any]) -> Any:
    """Apply an InceptionBlock to tensor ``x``."""
    a = block_arguments("InceptionBlock", spec)
    name = _namer(spec.get("name"))
    layers = keras.layers

    def conv(t: Any, filters: int, size: int, part: str) -> Any:
        t = layers.Conv2D(filters, size, padding="same", use_bias=not a["batch_norm"], name=name(part))(t)
        if a["batch_norm"]:
            t = layers.BatchNormalization(name=name(part + "_bn"))(t)
        return layers.Activation(a["activation"], name=name(part + "_act"))(t)

    b1 = conv(x, a["filters_1x1"], 1, "1x1")
    b3 = conv(conv(x, a["filters_3x3_reduce"], 1, "3x3_reduce"), a["filters_3x3"], 3, "3x3")
    b5 = conv(conv(x, a["filters_5x5_reduce"], 1, "5x5_reduce"), a["filters_5x5"], 5, "5x5")
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=name("pool"))(x)
    bp = conv(pool, a["filters_pool"], 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=name("concat"))([b1, b3, b5, bp])


BLOCK_BUILDERS: Mapping[str, Callable[[Any, Any, Mapping[str, Any]], Any]] = {
    "ResidualBlock": residual_block,
    "InceptionBlock": inception_block,
}
