"""Rules for values that may be written as plain values or as distributions.

``check(node, rule, errors)`` applies a rule to a node: a plain value is checked directly; a
numeric distribution is checked through its exact range and value type (``epochs`` needs an
int-typed distribution whose every value is >= 1); a choice is checked option by option, each
error located at the option's path. ``allow_dist=False`` demands a fixed value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass

from .distributions import DISTRIBUTION_NAMES, is_number
from .errors import ErrorList
from .nodes import Choice, Const, Dist, Invalid, ListNode, MapNode, Node, near_distribution_name
from .paths import describe, key_path


def _args_text(node: Dist) -> str:
    return "[" + ", ".join(repr(a) for a in node.args) + "]"


def node_kind(node: Node) -> str:
    """How to name what was found at a node in an error message."""
    if isinstance(node, Const):
        return describe(node.value)
    if isinstance(node, Dist | Choice):
        return f"a {node.name} distribution"
    if isinstance(node, ListNode):
        return "a list"
    if isinstance(node, MapNode):
        if len(node.items) == 1:
            (key,) = node.items
            if key in DISTRIBUTION_NAMES:
                return f"a {key} distribution (only model, training and params may hold distributions)"
            near = near_distribution_name(key)
            if near:
                return f"a mapping {{{key}: ...}} (did you mean {near!r}?)"
        return "a mapping"
    return "an invalid value"


class Rule:
    """What a value must be; subclasses override the checks they need."""

    expected = "a value"

    def value_problem(self, value: object) -> str | None:
        """None when the plain ``value`` is acceptable, else the reason."""
        return None

    def dist_problem(self, node: Dist) -> str | None:
        """None when every value of the numeric distribution is acceptable, else the reason."""
        return f"must be {self.expected}, not a {node.name} distribution"

    def container_problem(self, node: MapNode | ListNode, errors: ErrorList) -> str | None:
        """None when the mapping or list is acceptable (after adding its own errors), else why."""
        return f"must be {self.expected}, got {node_kind(node)}"


def check(node: Node | None, rule: Rule, errors: ErrorList, *, allow_dist: bool = True) -> None:
    """Apply ``rule`` to ``node`` (None: nothing to check), adding errors at the node paths."""
    if node is None or isinstance(node, Invalid):
        return
    problem: str | None
    if isinstance(node, Dist | Choice) and not allow_dist:
        problem = f"must be a fixed value ({rule.expected}), not a {node.name} distribution"
    elif isinstance(node, Choice):
        for option in node.options:
            check(option, rule, errors)
        return
    elif isinstance(node, Dist):
        problem = rule.dist_problem(node)
    elif isinstance(node, Const):
        problem = rule.value_problem(node.value)
    else:
        problem = rule.container_problem(node, errors)
    if problem is not None:
        errors.add(node.path, problem)


def _bounds_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


@dataclass(frozen=True)
class NumberRule(Rule):
    """A number (int or float, not bool) within optional bounds; ``integer`` demands ints."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        base = "an integer" if self.integer else "a number"
        bounds = _bounds_text(self.lo, self.hi, self.lo_open, self.hi_open)
        return f"{base} {bounds}" if bounds else base

    def _out_of_bounds(self, lo: float, hi: float, lo_open: bool = False) -> float | None:
        """The offending end of [lo, hi], or None when inside the bounds."""
        if self.lo is not None and (lo < self.lo or (lo == self.lo and self.lo_open and not lo_open)):
            return lo
        if self.hi is not None and (hi > self.hi or (hi == self.hi and self.hi_open)):
            return hi
        return None

    def value_problem(self, value: object) -> str | None:
        if not is_number(value) or (self.integer and not isinstance(value, int)):
            return f"must be {self.expected}, got {describe(value)}"
        assert isinstance(value, int | float)
        if self._out_of_bounds(value, value) is not None:
            return f"must be {self.expected}, got {value!r}"
        return None

    def dist_problem(self, node: Dist) -> str | None:
        written = f"{node.name} {_args_text(node)}"
        if self.integer and not node.integer:
            return (
                f"must be {self.expected}, but {written} gives floats "
                "(use uniformint or randint, or integer arguments for quniform/qloguniform)"
            )
        r = node.dist.value_range(node.args)
        bad = self._out_of_bounds(r.lo, r.hi, r.lo_open)
        if bad is not None:
            shown = f"{bad:g}" if math.isfinite(bad) else ("any value" if bad > 0 else "any negative value")
            return f"must be {self.expected}, but {written} can give {shown}"
        return None


def int_rule(lo: int | None = None, hi: int | None = None) -> NumberRule:
    """An integer within [lo, hi]."""
    return NumberRule(lo=lo, hi=hi, integer=True)


@dataclass(frozen=True)
class EnumRule(Rule):
    """One of a set of strings (``nullable``: or null)."""

    choices: Collection[str]
    nullable: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        text = "one of " + ", ".join(sorted(self.choices))
        return text + " or null" if self.nullable else text

    def value_problem(self, value: object) -> str | None:
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and value in self.choices:
            return None
        return f"must be {self.expected}, got {describe(value)}"


@dataclass(frozen=True)
class StrRule(Rule):
    """A non-empty string of at most ``max_len`` characters, matching ``pattern`` if given."""

    pattern: str | None = None
    max_len: int = 200
    what: str = "a non-empty string"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return self.what

    def value_problem(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return f"must be {self.expected}, got {describe(value)}"
        if len(value) > self.max_len:
            return f"must be at most {self.max_len} characters, got {len(value)}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"must be {self.expected}, got {describe(value)}"
        return None


@dataclass(frozen=True)
class BoolRule(Rule):
    """true or false."""

    expected = "true or false"

    def value_problem(self, value: object) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, got {describe(value)}"


@dataclass(frozen=True)
class Nullable(Rule):
    """null, or what ``inner`` accepts."""

    inner: Rule

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"{self.inner.expected} or null"

    def value_problem(self, value: object) -> str | None:
        return None if value is None else self.inner.value_problem(value)

    def dist_problem(self, node: Dist) -> str | None:
        return self.inner.dist_problem(node)


@dataclass(frozen=True)
class ArgumentValueRule(Rule):
    """A Keras argument: a number, string, boolean, null, or a (nested) list of them.

    Mappings are refused: Keras reads mappings as serialised objects, which could name code.
    Distributions are allowed anywhere.
    """

    expected = "a number, string, boolean, null or a list of them"

    def dist_problem(self, node: Dist) -> str | None:
        return None

    def container_problem(self, node: MapNode | ListNode, errors: ErrorList) -> str | None:
        if isinstance(node, ListNode):
            for item in node.items:
                check(item, self, errors)
            return None
        return f"must be {self.expected}, got {node_kind(node)}"


ARGUMENT_VALUE = ArgumentValueRule()
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"


def check_keys(
    node: MapNode, allowed: Collection[str], errors: ErrorList, *, required: Collection[str] = ()
) -> None:
    """Unknown keys and missing required keys of a mapping, as errors."""
    for key in node.items:
        if key not in allowed:
            errors.add(key_path(node.path, key), f"unknown key; expected one of {', '.join(sorted(allowed))}")
    for key in required:
        if key not in node.items:
            errors.add(key_path(node.path, key), "required")
