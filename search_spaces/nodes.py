"""A section of a document read into a tree of nodes: plain values, containers and distributions.

:func:`parse` turns the raw value of a section (``model``, ``training``, ``params``) into nodes,
reading every one-key mapping named after a distribution (see :mod:`.distributions`) and the
``{literal: X}`` escape (X taken as is). Each node carries its path (see :mod:`.paths`), which is
also the hyperopt label of a distribution. Options of a choice get the path of the choice
followed by ``[i]`` (numbered options, pchoice) or ``.name`` (named options).

Bad distributions are recorded in the ErrorList and replaced by an :class:`Invalid` node, which
the section checks skip so that one mistake is reported once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .distributions import (
    DISTRIBUTION_NAMES,
    LITERAL_KEY,
    NUMERIC_DISTRIBUTIONS,
    PCHOICE_TOLERANCE,
    Number,
    NumericDistribution,
    is_number,
    parse_arguments,
)
from .document import MAX_PARAMETERS
from .errors import DOCUMENT_LOC, ErrorList
from .paths import describe, index_path, key_path


@dataclass(frozen=True)
class Const:
    """A scalar: str, int, float, bool or None."""

    value: Any
    path: str


@dataclass(frozen=True)
class MapNode:
    """A mapping that is not a distribution."""

    items: dict[str, Node]
    path: str


@dataclass(frozen=True)
class ListNode:
    """A list."""

    items: tuple[Node, ...]
    path: str


@dataclass(frozen=True)
class Dist:
    """A numeric distribution; ``path`` is its hyperopt label."""

    dist: NumericDistribution
    args: tuple[Number, ...]
    path: str

    @property
    def name(self) -> str:
        return self.dist.name

    @property
    def integer(self) -> bool:
        return self.dist.integer(self.args)


@dataclass(frozen=True)
class Choice:
    """A ``choice`` or ``pchoice``; ``path`` is its label, ``options[i].path`` the option paths.

    ``names`` is set for a named choice, ``probabilities`` for a pchoice.
    """

    options: tuple[Node, ...]
    path: str
    names: tuple[str, ...] | None = None
    probabilities: tuple[float, ...] | None = None

    @property
    def name(self) -> str:
        return "choice" if self.probabilities is None else "pchoice"


@dataclass(frozen=True)
class Invalid:
    """Stands for a distribution that had errors (already reported)."""

    path: str


Node = Const | MapNode | ListNode | Dist | Choice | Invalid
Param = Dist | Choice


def near_distribution_name(key: str) -> str | None:
    """The distribution name ``key`` was probably meant to be (``unifrom`` -> ``uniform``)."""
    if key in DISTRIBUTION_NAMES or key == LITERAL_KEY:
        return None
    lowered = key.lower()
    if lowered in DISTRIBUTION_NAMES:
        return lowered
    close = difflib.get_close_matches(lowered, sorted(DISTRIBUTION_NAMES), n=1, cutoff=0.8)
    return close[0] if close else None


class Parser:
    """Reads raw values into nodes; one Parser counts the distributions of a whole space."""

    def __init__(self, errors: ErrorList) -> None:
        self.errors = errors
        self.count = 0

    def parse(self, value: Any, path: str) -> Node:
        """The node for ``value`` found at ``path``."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == LITERAL_KEY:
                    return plain(arg, path)
                if key in NUMERIC_DISTRIBUTIONS:
                    return self._numeric(NUMERIC_DISTRIBUTIONS[key], arg, path)
                if key == "choice":
                    return self._choice(arg, path)
                if key == "pchoice":
                    return self._pchoice(arg, path)
            return MapNode({k: self.parse(v, key_path(path, k)) for k, v in value.items()}, path)
        if isinstance(value, list | tuple):
            return ListNode(tuple(self.parse(v, index_path(path, i)) for i, v in enumerate(value)), path)
        return Const(value, path)

    def _counted(self) -> None:
        self.count += 1
        if self.count == MAX_PARAMETERS + 1:
            self.errors.add(DOCUMENT_LOC, f"the search space has more than {MAX_PARAMETERS} distributions")

    def _numeric(self, dist: NumericDistribution, raw: Any, path: str) -> Node:
        self._counted()
        args, reason = parse_arguments(dist, raw)
        if args is None:
            self.errors.add(path, reason or f"invalid {dist.name}")
            return Invalid(path)
        return Dist(dist, tuple(args), path)

    def _choice(self, raw: Any, path: str) -> Node:
        self._counted()
        if isinstance(raw, Mapping):
            if not raw:
                self.errors.add(path, "choice needs at least one option")
                return Invalid(path)
            names = tuple(raw)
            options = tuple(self.parse(v, key_path(path, k)) for k, v in raw.items())
            return Choice(options, path, names=names)
        if isinstance(raw, list | tuple):
            if not raw:
                self.errors.add(path, "choice needs at least one option")
                return Invalid(path)
            return Choice(tuple(self.parse(v, index_path(path, i)) for i, v in enumerate(raw)), path)
        self.errors.add(
            path,
            f"choice needs a list of options or a mapping of named options, got {describe(raw)} "
            "(write {literal: {choice: ...}} for a plain mapping)",
        )
        return Invalid(path)

    def _pchoice(self, raw: Any, path: str) -> Node:
        self._counted()
        if not isinstance(raw, list | tuple):
            self.errors.add(
                path,
                f"pchoice needs a list [[probability, option], ...], got {describe(raw)} "
                "(write {literal: {pchoice: ...}} for a plain mapping)",
            )
            return Invalid(path)
        if not raw:
            self.errors.add(path, "pchoice needs at least one option")
            return Invalid(path)
        probabilities: list[float] = []
        options: list[Node] = []
        ok = True
        for i, pair in enumerate(raw):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                self.errors.add(path, f"pchoice option {i} needs [probability, option], got {describe(pair)}")
                ok = False
                continue
            p, option = pair
            if not is_number(p) or not 0 < p <= 1:
                self.errors.add(
                    path, f"pchoice needs probabilities with 0 < p <= 1, got {describe(p)} for option {i}"
                )
                ok = False
                continue
            probabilities.append(float(p))
            options.append(self.parse(option, index_path(path, i)))
        if not ok:
            return Invalid(path)
        total = sum(probabilities)
        if abs(total - 1.0) > PCHOICE_TOLERANCE:
            self.errors.add(path, f"pchoice probabilities must sum to 1, got {total:.9g}")
            return Invalid(path)
        return Choice(tuple(options), path, probabilities=tuple(probabilities))


def plain(value: Any, path: str) -> Node:
    """``value`` as nodes without reading distributions (for ``{literal: X}`` and unparsed sections)."""
    if isinstance(value, Mapping):
        return MapNode({k: plain(v, key_path(path, k)) for k, v in value.items()}, path)
    if isinstance(value, list | tuple):
        return ListNode(tuple(plain(v, index_path(path, i)) for i, v in enumerate(value)), path)
    return Const(value, path)


def to_value(node: Node) -> Any:
    """The plain value of a node tree without distributions (JSON-like; lists for lists)."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, MapNode):
        return {k: to_value(v) for k, v in node.items.items()}
    if isinstance(node, ListNode):
        return [to_value(v) for v in node.items]
    raise TypeError(f"{node.path}: a distribution has no plain value")


def iter_params(node: Node) -> Iterator[Param]:
    """Every distribution in ``node``, depth first in document order (a choice before its options)."""
    if isinstance(node, Dist):
        yield node
    elif isinstance(node, Choice):
        yield node
        for option in node.options:
            yield from iter_params(option)
    elif isinstance(node, MapNode):
        for child in node.items.values():
            yield from iter_params(child)
    elif isinstance(node, ListNode):
        for child in node.items:
            yield from iter_params(child)


def has_params(node: Node) -> bool:
    """Whether ``node`` holds a distribution."""
    return next(iter_params(node), None) is not None
