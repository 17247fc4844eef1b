"""Checks of what Keras will be given: argument names and kinds, object names, objective metrics.

Read from :mod:`.keras_table` (generated from Keras by tools/gen_keras_table.py), so the API checks a
document the way the worker's Keras will read it, without importing Keras. Every mistake is reported at
its path with a "did you mean" when a known name is close:

- arguments of layers, composite blocks, optimizers and learning-rate schedules: unknown names, and
  required ones that are missing (a misspelt required argument is reported once, as the misspelling);
- argument kinds where Keras's signature says them (a ``bool`` default wants true/false, an ``int``
  default an integer or a list of them, a ``float`` default a number, a ``str`` default a string);
- activation, initializer, regularizer, constraint and loss names; ``early_stopping.monitor``;
- ``objective.metric`` of a Keras search (see :mod:`.metric_names`).

A value that is a choice is checked option by option (see :func:`.checks.check`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import keras_table
from .checks import ARGUMENT_VALUE, BoolRule, Nullable, NumberRule, Rule, StrRule, check
from .errors import ErrorList
from .keras_names import COMPOSITE_BLOCK_ARGUMENTS, REQUIRED
from .metric_names import EPOCH_LOG_METRICS, KERAS_OBJECTIVE_METRICS, TEST_METRICS, VALIDATION_METRICS
from .nodes import Const, ListNode, MapNode, Node
from .paths import describe, key_path

AUTO_FILLED_SCHEDULE_ARGUMENTS = frozenset({"decay_steps"})
"""Schedule arguments the worker fills in when absent (the whole run's steps)."""
COMPOSITE_BLOCK_EXTRA = frozenset({"name"})


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """The known name ``word`` was probably meant to be (same letters in another case, or close)."""
    names = sorted(set(known))
    lowered = {n.lower(): n for n in names}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.7)
    return close[0] if close else None


def _unknown(what: str, word: str, known: Collection[str], *, show_known: bool = True) -> str:
    near = did_you_mean(word, known)
    msg = f"unknown {what} {describe(word)}"
    if near:
        msg += f"; did you mean {near!r}?"
        return msg + (f" (known: {', '.join(sorted(known))})" if show_known and len(known) <= 20 else "")
    return msg + (f"; known: {', '.join(sorted(known))}" if show_known else "")


@dataclass(frozen=True)
class NameRule(Rule):
    """A name from a fixed set (an activation, an initializer, a loss, ...); ``nullable``: or null."""

    what: str
    names: frozenset[str]
    nullable: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"a{'n' if self.what[0] in 'aeiou' else ''} {self.what} name" + (
            " or null" if self.nullable else ""
        )

    def value_problem(self, value: object) -> str | None:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            return f"must be {self.expected}, got {describe(value)}"
        if value in self.names:
            return None
        return _unknown(self.what, value, self.names)


def _names(table: Iterable[str]) -> frozenset[str]:
    return frozenset(table)


ACTIVATIONS = _names(keras_table.ACTIVATIONS)
ACTIVATION = NameRule("activation", ACTIVATIONS)
ACTIVATION_OR_NULL = NameRule("activation", ACTIVATIONS, nullable=True)
LOSS = NameRule("loss", _names(keras_table.LOSSES))
MONITOR = NameRule("metric", frozenset(EPOCH_LOG_METRICS))


@dataclass(frozen=True)
class IntsRule(NumberRule):
    """An integer or a (nested) list of integers (``axis: -1``, ``padding: [1, 2]``)."""

    integer: bool = True

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "an integer or a list of integers"

    def container_problem(self, node: MapNode | ListNode, errors: ErrorList) -> str | None:
        if isinstance(node, ListNode) and node.items:
            for item in node.items:
                check(item, self, errors)
            return None
        got = "an empty list" if isinstance(node, ListNode) else "a mapping"
        return f"must be {self.expected}, got {got}"


KIND_RULES: Mapping[str, Rule] = {
    "activation": ACTIVATION_OR_NULL,
    "initializer": NameRule("initializer", _names(keras_table.INITIALIZERS), nullable=True),
    "regularizer": NameRule("regularizer", _names(keras_table.REGULARIZERS), nullable=True),
    "constraint": NameRule("constraint", _names(keras_table.CONSTRAINTS), nullable=True),
    "bool": BoolRule(),
    "int": IntsRule(),
    "float": NumberRule(),
    "str": StrRule(max_len=200, what="a string"),
    "any": ARGUMENT_VALUE,
}
"""The rule for each argument kind of the table."""


def _argument_rule(signatures: list[Mapping[str, Any]], key: str) -> Rule:
    kinds = {sig["arguments"].get(key) for sig in signatures}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is not None:
            return KIND_RULES[kind]
    return ARGUMENT_VALUE


def _check_names(
    node: MapNode,
    owners: list[tuple[str, Collection[str], Collection[str]]],
    errors: ErrorList,
    skip: Collection[str] = ("type",),
) -> None:
    """Unknown and missing arguments of ``node`` for each ``(owner, accepted, required)``."""
    for owner, accepted, required in owners:
        misspelt: set[str] = set()
        for key, value in node.items.items():
            if key in skip or key in accepted:
                continue
            near = did_you_mean(key, accepted)
            if near:
                misspelt.add(near)
                errors.add(value.path, f"unknown argument for {owner}; did you mean {near!r}?")
            else:
                takes = ", ".join(sorted(accepted))
                errors.add(value.path, f"unknown argument for {owner}; it takes {takes}")
        for key in required:
            if key not in node.items and key not in misspelt:
                errors.add(key_path(node.path, key), f"required by {owner}")


def check_layer_arguments(node: MapNode, layer_types: list[str], errors: ErrorList) -> None:
    """Argument names of a Keras layer whose type is one of ``layer_types`` (a choice of types: every
    argument must suit every type)."""
    owners = [
        (t, keras_table.LAYERS[t]["arguments"], keras_table.LAYERS[t]["required"])
        for t in layer_types
        if t in keras_table.LAYERS
    ]
    _check_names(node, owners, errors)


def layer_argument_rule(layer_types: list[str], key: str, known: Rule | None = None) -> Rule:
    """The rule for argument ``key`` of a layer of one of ``layer_types``: ``known`` (the section's own
    rule for a common argument, such as ``strides``) or the kind Keras's signature gives. ``known``
    also accepts null where every type has an optional argument without a typed default (pooling's
    ``strides: null`` means "as pool_size")."""
    signatures = [keras_table.LAYERS[t] for t in layer_types if t in keras_table.LAYERS]
    if known is None:
        return _argument_rule(signatures, key)
    if signatures and all(
        sig["arguments"].get(key) == "any" and key not in sig["required"] for sig in signatures
    ):
        return OrNull(known)
    return known


@dataclass(frozen=True)
class OrNull(Nullable):
    """:class:`Nullable` that also hands lists and mappings to ``inner`` (an argument whose value may be a
    list, e.g. a tuple argument, or null)."""

    def container_problem(self, node: MapNode | ListNode, errors: ErrorList) -> str | None:
        return self.inner.container_problem(node, errors)


def check_block_arguments(node: MapNode, block: str, errors: ErrorList) -> None:
    """Argument names of a composite block (ResidualBlock, InceptionBlock)."""
    arguments = COMPOSITE_BLOCK_ARGUMENTS[block]
    required = [k for k, v in arguments.items() if v is REQUIRED]
    _check_names(node, [(block, {*arguments, *COMPOSITE_BLOCK_EXTRA}, required)], errors)


def check_optimizer_arguments(node: MapNode, optimizer: str, errors: ErrorList) -> None:
    """Argument names of ``{type: <optimizer>, ...}``."""
    sig = keras_table.OPTIMIZERS.get(optimizer)
    if sig is None:
        return
    _check_names(node, [(optimizer, sig["arguments"], sig["required"])], errors)


def optimizer_argument_rule(optimizer: str, key: str) -> Rule:
    """The rule for argument ``key`` of optimizer ``optimizer``."""
    sig = keras_table.OPTIMIZERS.get(optimizer)
    return _argument_rule([sig] if sig else [], key)


def check_schedule_arguments(node: MapNode, schedule: str, errors: ErrorList) -> None:
    """Argument names of a learning-rate schedule ``{type: <schedule>, ...}``."""
    sig = keras_table.SCHEDULES.get(schedule)
    if sig is None:
        return
    required = [k for k in sig["required"] if k not in AUTO_FILLED_SCHEDULE_ARGUMENTS]
    _check_names(node, [(schedule, sig["arguments"], required)], errors)


def schedule_argument_rule(schedule: str, key: str) -> Rule:
    """The rule for argument ``key`` of learning-rate schedule ``schedule``."""
    sig = keras_table.SCHEDULES.get(schedule)
    return _argument_rule([sig] if sig else [], key)


def check_objective_metric(metric: Node | None, dataset: Any, training: Any, errors: ErrorList) -> None:
    """``objective.metric`` of a Keras search names a metric the worker reports (test_* only when the
    dataset's test split is evaluated; with median pruning, one reported after every epoch: val_*)."""
    if not isinstance(metric, Const) or not isinstance(metric.value, str):
        return
    name = metric.value
    if name not in KERAS_OBJECTIVE_METRICS:
        msg = _unknown("metric", name, KERAS_OBJECTIVE_METRICS, show_known=False)
        errors.add(metric.path, f"{msg} (known: {', '.join(KERAS_OBJECTIVE_METRICS)})")
    elif name in TEST_METRICS and not (isinstance(dataset, Mapping) and dataset.get("test") is True):
        errors.add(metric.path, f"{name} is only reported with dataset.test: true (the test split)")
    elif name not in VALIDATION_METRICS and _median_pruning(training):
        errors.add(
            metric.path,
            f"training.pruning compares the objective after every epoch, but {name} is known only at the "
            f"end; use one of {', '.join(VALIDATION_METRICS)}",
        )


def _median_pruning(training: Any) -> bool:
    pruning = training.get("pruning") if isinstance(training, Mapping) else None
    return isinstance(pruning, Mapping) and pruning.get("type") == "median"
