"""Structural checks of the ``model`` section, and flattening of sampled layer lists.

``model`` is ``{layers: [...], name: optional string}``. Each item of ``layers`` is

* a layer ``{type: <name>, **arguments}`` with ``type`` in ``LAYER_TYPES`` or
  ``COMPOSITE_BLOCKS`` (a choice between plain layer type names is allowed too);
  argument values are numbers, strings, booleans, null or lists of them, or distributions
  (never mappings: Keras would read them as serialised objects); common arguments are
  checked early (``KNOWN_ARGUMENTS``: ``units``/``filters`` integers >= 1, ``rate`` in
  [0, 1), ``kernel_size``/``pool_size``/``strides`` integers >= 1 or lists of them,
  ``activation`` a name);
* a ``choice``/``pchoice`` whose options are layers, ``null`` (skip the layer) or lists of
  layers (swapped sets of layers), checked recursively;
* a plain list of layers (flattened by :func:`flatten_layers`).

In a configuration ``model.layers`` keeps the shape of the document: a skipped layer is
``None`` and a chosen set of layers a nested list; ``flatten_layers`` gives the flat list of
layer mappings to build.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from .checks import (
    IDENTIFIER,
    BoolRule,
    NumberRule,
    Rule,
    StrRule,
    check,
    check_keys,
    int_rule,
    node_kind,
)
from .errors import ErrorList
from .keras_args import (
    ACTIVATION,
    ACTIVATION_OR_NULL,
    check_block_arguments,
    check_layer_arguments,
    layer_argument_rule,
)
from .keras_names import COMPOSITE_BLOCK_ARGUMENTS, COMPOSITE_BLOCKS, LAYER_TYPES
from .nodes import Choice, Const, Invalid, ListNode, MapNode, Node
from .paths import describe, key_path

MODEL_KEYS = frozenset({"layers", "name"})
_ALL_TYPES = LAYER_TYPES | COMPOSITE_BLOCKS
_NAME = StrRule(pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*", max_len=100, what="a name of letters, digits, _ . -")
_BLOCK_RULES = {
    "kernel_size": int_rule(1),
    "strides": int_rule(1),
    "batch_norm": BoolRule(),
    "activation": ACTIVATION,
}


class _SizeRule(NumberRule):
    """An integer >= 1, or a list of them (``kernel_size: 3`` or ``[3, 3]``)."""

    def __init__(self) -> None:
        super().__init__(lo=1, integer=True)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "an integer >= 1 or a list of them"

    def container_problem(self, node: MapNode | ListNode, errors: ErrorList) -> str | None:
        if isinstance(node, ListNode) and node.items:
            for item in node.items:
                check(item, _SIZE_ITEM, errors)
            return None
        return f"must be {self.expected}, got {node_kind(node)}"


_SIZE_ITEM = int_rule(1)
KNOWN_ARGUMENTS: dict[str, Rule] = {
    "units": int_rule(1),
    "filters": int_rule(1),
    "rate": NumberRule(lo=0, hi=1, hi_open=True),
    "kernel_size": _SizeRule(),
    "pool_size": _SizeRule(),
    "strides": _SizeRule(),
    "activation": ACTIVATION_OR_NULL,
}
"""Rules for common Keras layer arguments, checked early; other arguments only need plain values."""


def check_model(node: Node, errors: ErrorList) -> None:
    """Add the structural errors of a parsed ``model`` section."""
    if isinstance(node, Invalid):
        return
    if not isinstance(node, MapNode):
        errors.add(node.path, f"must be a mapping with a 'layers' list, got {node_kind(node)}")
        return
    check_keys(node, MODEL_KEYS, errors, required=("layers",))
    check(node.items.get("name"), _NAME, errors, allow_dist=False)
    layers = node.items.get("layers")
    if layers is None or isinstance(layers, Invalid):
        return
    if not isinstance(layers, ListNode):
        errors.add(layers.path, f"must be a list of layers, got {node_kind(layers)}")
        return
    if not layers.items:
        errors.add(layers.path, "needs at least one layer")
    for item in layers.items:
        check_layer_item(item, errors)


def check_layer_item(node: Node, errors: ErrorList) -> None:
    """Add the errors of one item of a layer list (a layer, a list of them, or a choice)."""
    if isinstance(node, Invalid):
        return
    if isinstance(node, MapNode):
        check_layer(node, errors)
    elif isinstance(node, ListNode):
        for item in node.items:
            check_layer_item(item, errors)
    elif isinstance(node, Choice):
        for option in node.options:
            if not (isinstance(option, Const) and option.value is None):
                check_layer_item(option, errors)
    elif isinstance(node, Const) and node.value is None:
        errors.add(node.path, "null is only allowed as a choice option (to skip a layer)")
    else:
        errors.add(
            node.path,
            "must be a layer {type: ..., ...}, a list of layers or a choice of them, "
            f"got {node_kind(node)}",
        )


def _type_problem(value: object, composite_ok: bool) -> str | None:
    if not isinstance(value, str):
        return f"must be a layer type name, got {describe(value)}"
    if value in LAYER_TYPES or (composite_ok and value in COMPOSITE_BLOCKS):
        return None
    if value in COMPOSITE_BLOCKS:
        return f"{value} cannot be one of a choice of types; make the choice between whole layers"
    msg = f"layer type {value!r} is not allowed; allowed: {', '.join(sorted(_ALL_TYPES))}"
    near = difflib.get_close_matches(value, sorted(_ALL_TYPES), n=1, cutoff=0.6)
    lowered = {t.lower(): t for t in _ALL_TYPES}
    if value.lower() in lowered:
        near = [lowered[value.lower()]]
    return f"{msg} (did you mean {near[0]!r}?)" if near else msg


def check_layer(node: MapNode, errors: ErrorList) -> None:
    """Add the errors of one layer mapping ``{type: ..., **arguments}``."""
    type_node = node.items.get("type")
    layer_type: str | None = None
    layer_types: list[str] = []  # the Keras layer types this layer may be (a choice of types: several)
    if type_node is None:
        errors.add(node.path, "a layer needs a 'type', e.g. {type: Dense, units: 64}")
    elif isinstance(type_node, Const):
        problem = _type_problem(type_node.value, composite_ok=True)
        if problem:
            errors.add(type_node.path, problem)
        else:
            layer_type = type_node.value
            layer_types = [type_node.value]
    elif isinstance(type_node, Choice):
        for option in type_node.options:
            if isinstance(option, Const):
                problem = _type_problem(option.value, composite_ok=False)
            else:
                problem = f"must be a layer type name, got {node_kind(option)}"
            if problem:
                errors.add(option.path, problem)
            elif isinstance(option, Const):
                layer_types.append(option.value)
    elif not isinstance(type_node, Invalid):
        errors.add(
            type_node.path, f"must be a layer type name or a choice of them, got {node_kind(type_node)}"
        )

    for key in node.items:
        if key != "type" and not re.fullmatch(IDENTIFIER, key):
            errors.add(key_path(node.path, key), "is not a valid argument name")
    if layer_type in COMPOSITE_BLOCKS:
        _check_block(node, layer_type, errors)
        return
    check_layer_arguments(node, layer_types, errors)
    for key, value in node.items.items():
        if key != "type":
            check(value, layer_argument_rule(layer_types, key, KNOWN_ARGUMENTS.get(key)), errors)


def _check_block(node: MapNode, block: str, errors: ErrorList) -> None:
    arguments = COMPOSITE_BLOCK_ARGUMENTS[block]
    check_block_arguments(node, block, errors)
    check(node.items.get("name"), _NAME, errors, allow_dist=False)
    for key in arguments:
        rule = _BLOCK_RULES.get(key, int_rule(1))
        check(node.items.get(key), rule, errors)


def flatten_layers(layers: Any) -> list[dict[str, Any]]:
    """The flat list of layer mappings in a configuration's ``model.layers``.

    Nested lists (chosen sets of layers) are spliced in place and ``None`` (skipped layers) is
    dropped: ``[{a}, None, [{b}, [{c}]]]`` -> ``[{a}, {b}, {c}]``.
    """
    out: list[dict[str, Any]] = []
    stack: list[Any] = [layers]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out
