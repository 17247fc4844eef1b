"""A trial's ``model`` section turned into a Keras model, with Keras's own deserialisation and an
allow-list: nothing in a document can run code.

- ``model`` is ``{layers: [...], name: ...}`` (a bare list of layers is accepted too). ``None`` items
  (a ``choice`` that skipped a layer) are dropped and nested lists (a chosen set of layers) are spliced
  in place (as :func:`search_spaces.flatten_layers` does); errors name a layer by its path in the
  configuration (``model.layers[1][0]``).
- Each layer ``{type: T, **arguments}``: ``T`` must be in
  :data:`hyperhive.search_spaces.keras_names.LAYER_TYPES`
  and is built with ``keras.layers.T.from_config(arguments)``; arguments must be plain values (a mapping
  would be read by Keras as a serialised object). ``input_shape`` is ignored: it comes from the dataset.
  ``ResidualBlock`` and ``InceptionBlock`` are built by :mod:`hyperhive.workers.blocks`.
- The input is ``keras.Input(dataset shape)``, followed by the augmentation layers (active in training
  only). The head ``Dense(n_classes, softmax)`` is appended, after a ``Flatten`` when the features are
  not flat yet, unless the last layer already is that Dense.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from hyperhive.errors import HyperhiveError
from hyperhive.search_spaces.keras_names import COMPOSITE_BLOCKS, LAYER_TYPES
from hyperhive.workers.backend import import_keras
from hyperhive.workers.blocks import BLOCK_BUILDERS, BlockError

HEAD_NAME = "predictions"
AUGMENTATION_KEYS = ("flip", "rotation", "translation", "zoom", "contrast")
INTEGER_ARGUMENTS = frozenset(
    {"units", "filters", "kernel_size", "strides", "pool_size", "dilation_rate", "depth_multiplier", "size"}
)
"""Arguments Keras wants as integers: whole floats (``quniform`` samples such as 64.0) become ints."""


class ModelBuildError(HyperhiveError, ValueError):
    """The ``model`` section does not give a buildable model; the message names the layer and why."""


def model_layers(model: Any) -> list[dict[str, Any]]:
    """The flat list of layer mappings of a configuration's ``model`` section."""
    return [spec for _, spec in located_layers(model)]


def located_layers(model: Any) -> list[tuple[str, dict[str, Any]]]:
    """The flat list of ``(path, layer mapping)`` of a configuration's ``model`` section, in build order.

    ``path`` names the layer as the configuration (and a trial's config columns) do:
    ``model.layers[2]``, or ``model.layers[1][0]`` inside a chosen set of layers. Skipped (``None``)
    layers are dropped, as :func:`search_spaces.flatten_layers` does."""
    if model is None:
        raise ModelBuildError("the configuration has no model section")
    layers = model.get("layers") if isinstance(model, Mapping) else model
    if not isinstance(layers, list | tuple):
        raise ModelBuildError(f"model.layers must be a list of layers, got {type(layers).__name__}")
    out: list[tuple[str, dict[str, Any]]] = []
    stack: list[tuple[str, Any]] = [("model.layers", list(layers))]
    while stack:
        path, item = stack.pop()
        if item is None:
            continue
        if isinstance(item, list | tuple):
            stack.extend(reversed([(f"{path}[{i}]", sub) for i, sub in enumerate(item)]))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise ModelBuildError(f"{path}: must be a mapping {{type: ..., ...}}, got {item!r}")
        out.append((path, dict(item)))
    return out


def _type_error(type_name: str, where: str) -> ModelBuildError:
    allowed = sorted(LAYER_TYPES | COMPOSITE_BLOCKS)
    near = difflib.get_close_matches(type_name, allowed, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return ModelBuildError(
        f"{where}: layer type {type_name!r} is not allowed{hint}; allowed: {', '.join(allowed)}"
    )


def make_layer(keras: Any, spec: Mapping[str, Any], where: str = "layer") -> Any:
    """One allow-listed Keras layer from ``{type, **arguments}`` (not a composite block)."""
    type_name = spec["type"]
    if type_name not in LAYER_TYPES:
        raise _type_error(type_name, where)
    config = {k: v for k, v in spec.items() if k not in ("type", "input_shape")}
    for key, value in config.items():
        if isinstance(value, Mapping):
            raise ModelBuildError(
                f"{where} ({type_name}): argument {key!r} must be a plain value, not a mapping"
            )
        if key in INTEGER_ARGUMENTS:
            config[key] = _whole(value)
    cls = getattr(keras.layers, type_name, None)
    if cls is None:
        raise ModelBuildError(f"{where}: this Keras ({keras.__version__}) has no layer {type_name}")
    try:
        return cls.from_config(config)
    except (TypeError, ValueError) as exc:
        # from_config wraps the constructor's error in a long "could not be deserialized" text
        reason = str(exc).rsplit("Exception encountered:", 1)[-1].strip()
        raise ModelBuildError(f"{where} ({type_name}): {reason}") from None


def _whole(value: Any) -> Any:
    """Whole floats (also inside lists) as ints; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_whole(v) for v in value]
    return value


def augmentation_layers(
    keras: Any, augmentation: Mapping[str, Any] | None, seed: int | None = None
) -> list[Any]:
    """Keras preprocessing layers for ``training.augmentation`` ``{flip, rotation, translation, zoom,
    contrast}`` (absent, null or 0 entries skipped). They transform inputs only when training."""
    if not augmentation:
        return []
    unknown = sorted(set(augmentation) - set(AUGMENTATION_KEYS))
    if unknown:
        raise ModelBuildError(
            f"training.augmentation: unknown key(s) {', '.join(unknown)}; use {', '.join(AUGMENTATION_KEYS)}"
        )
    L = keras.layers
    out: list[Any] = []
    flip = augmentation.get("flip")
    if flip:
        out.append(L.RandomFlip(mode=flip, seed=seed, name="augment_flip"))
    factors = {k: augmentation.get(k) for k in AUGMENTATION_KEYS[1:]}
    for key, value in factors.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ModelBuildError(f"training.augmentation.{key}: must be a number in [0, 1], got {value!r}")
    if factors["rotation"]:
        out.append(L.RandomRotation(factors["rotation"], seed=seed, name="augment_rotation"))
    if factors["translation"]:
        t = factors["translation"]
        out.append(L.RandomTranslation(t, t, seed=seed, name="augment_translation"))
    if factors["zoom"]:
        out.append(L.RandomZoom(factors["zoom"], seed=seed, name="augment_zoom"))
    if factors["contrast"]:
        out.append(
            L.RandomContrast(factors["contrast"], value_range=(0, 1), seed=seed, name="augment_contrast")
        )
    return out


def _is_head(spec: Mapping[str, Any], n_classes: int) -> bool:
    return (
        spec.get("type") == "Dense" and spec.get("units") == n_classes and spec.get("activation") == "softmax"
    )


def build_model(
    model: Any,
    input_shape: Sequence[int],
    n_classes: int,
    *,
    augmentation: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Any:
    """The Keras functional model of a ``model`` section (see the module docstring).

    Raises :class:`ModelBuildError` naming the layer by its path in the configuration
    (``model.layers[3] (Conv2D): ...``, see :func:`located_layers`) and the reason.
    """
    keras = import_keras()
    located = located_layers(model)
    specs = [spec for _, spec in located]
    name = model.get("name") if isinstance(model, Mapping) else None
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in augmentation_layers(keras, augmentation, seed):
        x = layer(x)
    for where, spec in located:
        type_name = spec["type"]
        try:
            if type_name in BLOCK_BUILDERS:
                x = BLOCK_BUILDERS[type_name](keras, x, spec)
            else:
                x = make_layer(keras, spec, where)(x)
        except ModelBuildError:
            raise
        except BlockError as exc:
            raise ModelBuildError(f"{where} ({type_name}): {exc}") from None
        except (ValueError, TypeError) as exc:
            raise ModelBuildError(
                f"{where} ({type_name}) on input of shape {tuple(x.shape)}: {exc}"
            ) from None
    if specs and _is_head(specs[-1], n_classes):
        if len(x.shape) != 2:
            raise ModelBuildError(
                f"{located[-1][0]} (Dense): the model's output has shape {tuple(x.shape)}; add Flatten or "
                "GlobalAveragePooling2D before the final Dense"
            )
    else:
        if len(x.shape) > 2:
            x = keras.layers.Flatten(name="head_flatten")(x)
        x = keras.layers.Dense(n_classes, activation="softmax", name=HEAD_NAME)(x)
    try:
        return keras.Model(inputs, x, name=name or "hyperhive_model")
    except ValueError as exc:
        raise ModelBuildError(f"the model cannot be assembled: {exc}") from None


def layer_summary(model: Any) -> list[str]:
    """The model's layers as ``ClassName`` strings (input layer left out), for trial info and tests."""
    return [type(layer).__name__ for layer in model.layers if type(layer).__name__ != "InputLayer"]
