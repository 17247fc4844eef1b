"""The ``training`` section's optimizer, learning-rate schedule and loss as Keras objects.

- ``optimizer: {type: T, **arguments}``: ``T`` in :data:`hyperhive.search_spaces.keras_names.OPTIMIZER_TYPES`,
  built as ``keras.optimizers.T(**arguments)`` (SGD ``momentum``/``nesterov``, Adam ``beta_1``/
  ``beta_2``/``epsilon``, AdamW ``weight_decay``, ...).
- ``learning_rate`` may be a number or a schedule ``{type: S, **arguments}`` with ``S`` in
  :data:`~hyperhive.search_spaces.keras_names.LR_SCHEDULES` (``keras.optimizers.schedules.S``). A schedule
  without ``decay_steps`` decays over the whole training run (epochs x steps per epoch).
- ``loss``: a Keras loss name (default ``categorical_crossentropy``); losses named ``sparse_*`` take
  integer labels, the others one-hot labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperhive.errors import HyperhiveError
from hyperhive.search_spaces import TRAINING_DEFAULTS
from hyperhive.search_spaces.keras_names import LR_SCHEDULES, OPTIMIZER_TYPES

DECAY_STEP_SCHEDULES = ("ExponentialDecay", "CosineDecay", "InverseTimeDecay", "PolynomialDecay")


class TrainingConfigError(HyperhiveError, ValueError):
    """An optimizer, schedule or loss that Keras cannot build; the message names the field."""


def _typed(spec: Any, allowed: frozenset[str], where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise TrainingConfigError(f"{where} must be a mapping {{type: ..., ...}}, got {spec!r}")
    type_name = spec["type"]
    if type_name not in allowed:
        raise TrainingConfigError(
            f"{where}.type {type_name!r} is not allowed; allowed: {', '.join(sorted(allowed))}"
        )
    return type_name, {k: v for k, v in spec.items() if k != "type"}


def build_schedule(keras: Any, spec: Mapping[str, Any], total_steps: int) -> Any:
    """A ``keras.optimizers.schedules`` object from ``{type, **arguments}``."""
    type_name, kwargs = _typed(spec, LR_SCHEDULES, "training.optimizer.learning_rate")
    if type_name in DECAY_STEP_SCHEDULES and "decay_steps" not in kwargs:
        kwargs["decay_steps"] = max(1, int(total_steps))
    try:
        return getattr(keras.optimizers.schedules, type_name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"training.optimizer.learning_rate ({type_name}): {exc}") from None


def build_optimizer(keras: Any, spec: Any, total_steps: int) -> Any:
    """A Keras optimizer from ``training.optimizer`` (None: the default, Adam)."""
    if spec is None:
        spec = dict(TRAINING_DEFAULTS["optimizer"])
    type_name, kwargs = _typed(spec, OPTIMIZER_TYPES, "training.optimizer")
    lr = kwargs.get("learning_rate")
    if isinstance(lr, Mapping):
        kwargs["learning_rate"] = build_schedule(keras, lr, total_steps)
    try:
        return getattr(keras.optimizers, type_name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"training.optimizer ({type_name}): {exc}") from None


def loss_name(training: Mapping[str, Any]) -> str:
    """The loss name of a training section (the default when absent)."""
    name = training.get("loss") or TRAINING_DEFAULTS["loss"]
    if not isinstance(name, str):
        raise TrainingConfigError(f"training.loss must be a Keras loss name, got {name!r}")
    return name


def build_loss(keras: Any, name: str) -> Any:
    """The Keras loss function called ``name``."""
    try:
        return keras.losses.get(name)
    except ValueError:
        raise TrainingConfigError(
            f"training.loss {name!r} is not a Keras loss; e.g. categorical_crossentropy, "
            "sparse_categorical_crossentropy, categorical_focal_crossentropy"
        ) from None


def sparse_labels(name: str) -> bool:
    """Whether the loss takes integer class indices rather than one-hot rows."""
    return name.startswith("sparse_")
