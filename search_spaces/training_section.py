"""Structural checks of the ``training`` section.

==================  ===================================================================
key                 value (every value may be a distribution unless said otherwise)
==================  ===================================================================
epochs              integer >= 1
batch_size          integer >= 1
optimizer           ``{type: <OPTIMIZER_TYPES>, **arguments}`` or a choice of such mappings;
                    ``learning_rate`` is a number > 0, a distribution, or a schedule
                    ``{type: <LR_SCHEDULES>, **arguments}`` (or a choice of them)
loss                a Keras loss name (default ``categorical_crossentropy``)
early_stopping      null or {monitor, patience (int >= 0), min_delta (>= 0),
                    mode (min|max|auto), restore_best_weights (bool)}
augmentation        null or {flip: horizontal|vertical|horizontal_and_vertical|null,
                    rotation, translation, zoom, contrast: numbers in [0, 1] or null}
validation_split    number, 0 < x < 1
pruning             null or {type: median|none, warmup_epochs (int >= 0),
                    min_trials (int >= 1)}; fixed values only (no distributions)
==================  ===================================================================

``TRAINING_DEFAULTS`` holds the values a worker uses for keys that are absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .checks import (
    IDENTIFIER,
    BoolRule,
    EnumRule,
    Nullable,
    NumberRule,
    check,
    check_keys,
    int_rule,
    node_kind,
)
from .errors import ErrorList
from .keras_args import (
    LOSS,
    MONITOR,
    check_optimizer_arguments,
    check_schedule_arguments,
    optimizer_argument_rule,
    schedule_argument_rule,
)
from .keras_names import LR_SCHEDULES, OPTIMIZER_TYPES
from .nodes import Choice, Const, Invalid, MapNode, Node
from .paths import describe

TRAINING_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "epochs": 10,
        "batch_size": 32,
        "optimizer": MappingProxyType({"type": "Adam"}),
        "loss": "categorical_crossentropy",
    }
)
"""What a worker uses for a training key the document leaves out."""

_FRACTION = Nullable(NumberRule(lo=0, hi=1))
_RULES = {
    "epochs": int_rule(1),
    "batch_size": int_rule(1),
    "loss": LOSS,
    "validation_split": NumberRule(lo=0, hi=1, lo_open=True, hi_open=True),
}
_EARLY_STOPPING = {
    "monitor": MONITOR,
    "patience": int_rule(0),
    "min_delta": NumberRule(lo=0),
    "mode": EnumRule(("min", "max", "auto")),
    "restore_best_weights": BoolRule(),
}
_AUGMENTATION = {
    "flip": EnumRule(("horizontal", "vertical", "horizontal_and_vertical"), nullable=True),
    "rotation": _FRACTION,
    "translation": _FRACTION,
    "zoom": _FRACTION,
    "contrast": _FRACTION,
}
_PRUNING = {
    "type": EnumRule(("median", "none")),
    "warmup_epochs": int_rule(0),
    "min_trials": int_rule(1),
}
TRAINING_KEYS = frozenset(
    {*_RULES, "optimizer", "early_stopping", "augmentation", "pruning"},
)
_POSITIVE = NumberRule(lo=0, lo_open=True)


def check_training(node: Node, errors: ErrorList) -> None:
    """Add the structural errors of a parsed ``training`` section."""
    if isinstance(node, Invalid):
        return
    if not isinstance(node, MapNode):
        errors.add(node.path, f"must be a mapping, got {node_kind(node)}")
        return
    check_keys(node, TRAINING_KEYS, errors)
    for key, rule in _RULES.items():
        check(node.items.get(key), rule, errors)
    if "optimizer" in node.items:
        check_optimizer(node.items["optimizer"], errors)
    _check_block(node.items.get("early_stopping"), _EARLY_STOPPING, errors, allow_dist=True)
    _check_block(node.items.get("augmentation"), _AUGMENTATION, errors, allow_dist=True)
    _check_block(node.items.get("pruning"), _PRUNING, errors, allow_dist=False)


def _check_block(node: Node | None, rules: Mapping[str, Any], errors: ErrorList, *, allow_dist: bool) -> None:
    if node is None or isinstance(node, Invalid) or (isinstance(node, Const) and node.value is None):
        return
    if not isinstance(node, MapNode):
        errors.add(node.path, f"must be a mapping or null, got {node_kind(node)}")
        return
    check_keys(node, rules, errors)
    for key, rule in rules.items():
        check(node.items.get(key), rule, errors, allow_dist=allow_dist)


def _check_typed(node: MapNode, allowed: frozenset[str], what: str, errors: ErrorList) -> dict[str, Node]:
    """Check ``{type: <allowed>, ...}`` and return its other entries."""
    type_node = node.items.get("type")
    if type_node is None:
        errors.add(node.path, f"{what} needs a 'type', one of {', '.join(sorted(allowed))}")
    elif not isinstance(type_node, Const):
        errors.add(type_node.path, f"must be a fixed {what} type name, got {node_kind(type_node)}")
    elif type_node.value not in allowed:
        errors.add(
            type_node.path,
            f"{what} type {describe(type_node.value)} is not allowed; allowed: {', '.join(sorted(allowed))}",
        )
    rest = {k: v for k, v in node.items.items() if k != "type"}
    for key, value in rest.items():
        if not _is_identifier(key):
            errors.add(value.path, "is not a valid argument name")
    return rest


def _type_name(node: MapNode) -> str:
    """The fixed ``type`` of a typed mapping ("" when it has none)."""
    type_node = node.items.get("type")
    return type_node.value if isinstance(type_node, Const) and isinstance(type_node.value, str) else ""


def _is_identifier(key: str) -> bool:
    return re.fullmatch(IDENTIFIER, key) is not None


def check_optimizer(node: Node, errors: ErrorList) -> None:
    """Add the errors of ``optimizer``: ``{type: ..., **arguments}`` or a choice of them."""
    if isinstance(node, Invalid):
        return
    if isinstance(node, Choice):
        for option in node.options:
            check_optimizer(option, errors)
        return
    if not isinstance(node, MapNode):
        hint = (
            f" (write {{type: {node.value}}})"
            if isinstance(node, Const) and isinstance(node.value, str)
            else ""
        )
        errors.add(
            node.path,
            f"must be an optimizer {{type: Adam, ...}} or a choice of them, got {node_kind(node)}{hint}",
        )
        return
    rest = _check_typed(node, OPTIMIZER_TYPES, "optimizer", errors)
    for key, value in rest.items():
        if key == "learning_rate":
            check_learning_rate(value, errors)
        else:
            check(value, optimizer_argument_rule(_type_name(node), key), errors)
    check_optimizer_arguments(node, _type_name(node), errors)


def check_learning_rate(node: Node, errors: ErrorList) -> None:
    """Add the errors of a learning rate: a number > 0, a distribution, a schedule or a choice."""
    if isinstance(node, Choice):
        for option in node.options:
            check_learning_rate(option, errors)
    elif isinstance(node, MapNode):
        for key, value in _check_typed(node, LR_SCHEDULES, "learning-rate schedule", errors).items():
            check(value, schedule_argument_rule(_type_name(node), key), errors)
        check_schedule_arguments(node, _type_name(node), errors)
    else:
        check(node, _POSITIVE, errors)
