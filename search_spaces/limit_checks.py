"""Applying :mod:`.limits` to the parsed sections of a document (``model``, ``training``, ``params``).

The section checks say what a value must be (an integer >= 1, a layer type); this pass says how big it
may be. A bound holds for every value a node can give: a constant, every end of a numeric
distribution's exact range (``quniform`` rounding included), every option of a choice and every number
in a list. Each error names the path and the limit; all are reported together with the other errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .distributions import is_number
from .errors import DOCUMENT_LOC, ErrorList
from .limits import (
    BLOCK_LAYERS,
    LAYER_ARGUMENT_MAXIMA,
    MAX_CHOICE_OPTIONS,
    MAX_CONFIG_BYTES,
    MAX_LAYERS,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    TRAINING_MAXIMA,
)
from .nodes import Choice, Const, Dist, Invalid, ListNode, MapNode, Node, plain

_DIST_SIZE = 24
"""The most JSON characters one sampled number takes (``-1.2345678901234567e-300``)."""


def check_limits(sections: Mapping[str, Node], errors: ErrorList) -> None:
    """Add an error for every value of ``sections`` (parsed by ``parse_sections``) beyond a limit."""
    model = sections.get("model")
    layers = model.items.get("layers") if isinstance(model, MapNode) else None
    if isinstance(layers, ListNode):
        for item in layers.items:
            _check_layer_item(item, errors)
        count = max_layers(layers)
        if count > MAX_LAYERS:
            blocks = ", ".join(f"{name} {n}" for name, n in sorted(BLOCK_LAYERS.items()))
            errors.add(
                layers.path,
                f"a configuration can build {count} layers; the limit is {MAX_LAYERS} "
                f"(a block counts as the layers it builds: {blocks})",
            )
    training = sections.get("training")
    if isinstance(training, MapNode):
        for dotted, limit in TRAINING_MAXIMA.items():
            node: Node | None = training
            for key in dotted.split("."):
                node = node.items.get(key) if isinstance(node, MapNode) else None
            check_at_most(node, limit, errors)
    for section in sections.values():
        _check_payload(section, errors)
    size = config_size(sections)
    if size > MAX_CONFIG_BYTES:
        errors.add(
            DOCUMENT_LOC,
            f"a sampled configuration can take {size} bytes as JSON; the limit is {MAX_CONFIG_BYTES} "
            "(every trial stores its configuration)",
        )


def check_config_limits(config: Mapping[str, Any]) -> None:
    """Raise SpecError when a sampled configuration (plain values) is beyond the limits: what a worker
    checks before it builds anything, whatever produced the configuration (an import, a hand-edited
    store)."""
    errors = ErrorList()
    sections = {key: plain(value, key) for key, value in config.items() if value is not None}
    check_limits(sections, errors)
    errors.raise_if_any()


def check_at_most(node: Node | None, limit: float, errors: ErrorList) -> None:
    """An error at each number ``node`` can give above ``limit`` (non-numbers are left to the type
    checks)."""
    if node is None or isinstance(node, Invalid):
        return
    if isinstance(node, Const):
        if is_number(node.value) and node.value > limit:
            errors.add(node.path, f"must be at most {limit:g}, got {node.value!r}")
    elif isinstance(node, Dist):
        hi = node.dist.value_range(node.args).hi
        if hi > limit:
            written = f"{node.name} [{', '.join(repr(a) for a in node.args)}]"
            shown = f"{hi:.15g}" if math.isfinite(hi) else "any value"
            errors.add(node.path, f"must be at most {limit:g}, but {written} can give {shown}")
    elif isinstance(node, Choice):
        for option in node.options:
            check_at_most(option, limit, errors)
    elif isinstance(node, ListNode):
        for item in node.items:
            check_at_most(item, limit, errors)


def _check_layer_item(node: Node, errors: ErrorList) -> None:
    if isinstance(node, MapNode):
        for key, value in node.items.items():
            limit = LAYER_ARGUMENT_MAXIMA.get(key)
            if limit is not None:
                check_at_most(value, limit, errors)
    elif isinstance(node, ListNode):
        for item in node.items:
            _check_layer_item(item, errors)
    elif isinstance(node, Choice):
        for option in node.options:
            _check_layer_item(option, errors)


def max_layers(node: Node) -> int:
    """The most layers a layer item (a layer, a list of them, a choice) can build."""
    if isinstance(node, MapNode):
        kind = node.items.get("type")
        if isinstance(kind, Const) and isinstance(kind.value, str):
            return BLOCK_LAYERS.get(kind.value, 1)
        return 1
    if isinstance(node, ListNode):
        return sum(max_layers(item) for item in node.items)
    if isinstance(node, Choice):
        return max((max_layers(option) for option in node.options), default=0)
    return 0


def _check_payload(node: Node, errors: ErrorList) -> None:
    if isinstance(node, Const):
        if isinstance(node.value, str) and len(node.value) > MAX_STRING_CHARS:
            errors.add(
                node.path, f"a string of {len(node.value)} characters; the limit is {MAX_STRING_CHARS}"
            )
    elif isinstance(node, ListNode):
        if len(node.items) > MAX_LIST_ITEMS:
            errors.add(node.path, f"a list of {len(node.items)} items; the limit is {MAX_LIST_ITEMS}")
        for item in node.items:
            _check_payload(item, errors)
    elif isinstance(node, MapNode):
        if len(node.items) > MAX_LIST_ITEMS:
            errors.add(node.path, f"a mapping of {len(node.items)} keys; the limit is {MAX_LIST_ITEMS}")
        for item in node.items.values():
            _check_payload(item, errors)
    elif isinstance(node, Choice):
        if len(node.options) > MAX_CHOICE_OPTIONS:
            errors.add(
                node.path, f"a {node.name} of {len(node.options)} options; the limit is {MAX_CHOICE_OPTIONS}"
            )
        for option in node.options:
            _check_payload(option, errors)


def config_size(sections: Mapping[str, Node]) -> int:
    """An upper bound of the compact JSON size of a sampled configuration of ``sections``."""
    return 2 + sum(len(json.dumps(k)) + 2 + _size(v) for k, v in sections.items())


def _size(node: Node) -> int:
    if isinstance(node, Const):
        return len(json.dumps(node.value, ensure_ascii=False))
    if isinstance(node, Dist):
        return _DIST_SIZE
    if isinstance(node, Choice):
        return max((_size(option) for option in node.options), default=4)
    if isinstance(node, ListNode):
        return 2 + sum(_size(item) + 1 for item in node.items)
    if isinstance(node, MapNode):
        return 2 + sum(len(json.dumps(k, ensure_ascii=False)) + 2 + _size(v) for k, v in node.items.items())
    return 4
