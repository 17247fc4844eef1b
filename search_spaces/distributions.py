"""The distributions of the language: their written forms, argument checks and hyperopt builders.

A distribution is written as a mapping with exactly one key, the distribution's name::

    rate: {uniform: [0.1, 0.5]}             # list form, arguments in the order below
    rate: {uniform: {low: 0.1, high: 0.5}}  # mapping form, the same arguments by name

===============  ====================  ===================================================
name             arguments             values
===============  ====================  ===================================================
choice           [opt, ...]            one of the options (numbered), or
                 {name: opt, ...}      one of the named options
pchoice          [[p, opt], ...]       option with probability p (p > 0, sum 1 +- 1e-6)
randint          [low, high]           integers low <= x < high (integer bounds)
uniformint       [low, high]           integers low <= x <= high (integer bounds)
uniform          [low, high]           floats low <= x <= high
quniform         [low, high, q]        round(uniform(low, high) / q) * q
loguniform       [low, high]           exp(uniform(log low, log high)): 0 < low < high in
                                       REAL units, e.g. [1e-4, 1e-1]
qloguniform      [low, high, q]        round(loguniform(low, high) / q) * q
normal           [mu, sigma]           normal, sigma > 0
qnormal          [mu, sigma, q]        round(normal(mu, sigma) / q) * q
lognormal        [mu, sigma]           exp(normal(mu, sigma)): mu and sigma are those of
                                       the LOG of the value; |mu| <= 100, 0 < sigma <= 20
qlognormal       [mu, sigma, q]        round(lognormal(mu, sigma) / q) * q
===============  ====================  ===================================================

Numbers are ints or floats (booleans are not numbers) with absolute value at most 1e15.

Types of the values in a configuration: ``randint`` and ``uniformint`` give ``int``; a
quantised distribution (``q...``) gives ``int`` when ALL its arguments are written as integers
(``{quniform: [16, 256, 16]}``) and ``float`` otherwise (``{quniform: [0.0, 1, 0.25]}``); every
other numeric distribution gives ``float``. Choice options are returned as written.

Note that quantised values may fall outside [low, high] by up to q/2 (hyperopt rounds the draw),
e.g. ``{quniform: [1, 10, 4]}`` can give 0 and 12; :meth:`NumericDistribution.value_range` is
the exact range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hyperopt import hp
from hyperopt.pyll import Apply, scope

from .paths import describe

Number = int | float

MAX_ABS_ARGUMENT = 1e15
"""Largest absolute value of a distribution argument."""
LOG_MU_LIMIT = 100.0
LOG_SIGMA_LIMIT = 20.0
PCHOICE_TOLERANCE = 1e-6
LITERAL_KEY = "literal"
"""``{literal: X}`` stands for X taken as is: nothing inside X is read as a distribution."""


@dataclass(frozen=True)
class Range:
    """The values a numeric distribution can give: ``lo <= x <= hi`` (``lo < x`` if lo_open)."""

    lo: float
    hi: float
    lo_open: bool = False


def _fmt(args: Sequence[Number]) -> str:
    return "[" + ", ".join(repr(a) for a in args) + "]"


def _qround(value: float, q: Number) -> float:
    return round(value / q) * q


@dataclass(frozen=True)
class NumericDistribution:
    """One numeric distribution: its argument names and what it needs of them.

    ``check(args)`` returns None or the reason the arguments are wrong (for the error message);
    ``build(label, args)`` returns the hyperopt expression; ``integer(args)`` tells whether the
    values are ints (see the module doc); ``value_range(args)`` bounds the values.
    """

    name: str
    params: tuple[str, ...]
    log: bool
    _check: Callable[[Sequence[Number]], str | None]
    _build: Callable[[str, Sequence[Number]], Apply]
    _range: Callable[[Sequence[Number]], Range]
    _integer: Callable[[Sequence[Number]], bool]

    @property
    def form(self) -> str:
        """The written form, e.g. ``[low, high, q]``."""
        return "[" + ", ".join(self.params) + "]"

    def check(self, args: Sequence[Number]) -> str | None:
        """None when ``args`` are acceptable, else the reason (a sentence without location)."""
        return self._check(args)

    def integer(self, args: Sequence[Number]) -> bool:
        """Whether configurations hold ints for this distribution."""
        return self._integer(args)

    def value_range(self, args: Sequence[Number]) -> Range:
        """The exact range of the values (for already checked ``args``)."""
        return self._range(args)

    def build(self, label: str, args: Sequence[Number]) -> Apply:
        """The hyperopt expression (for already checked ``args``); int-typed ones yield ints."""
        expr = self._build(label, args)
        if self.integer(args) and self.name not in ("randint", "uniformint"):
            expr = scope.int(expr)
        return expr


def _all_int(args: Sequence[Number]) -> bool:
    return all(isinstance(a, int) for a in args)


def _low_high(name: str) -> Callable[[Sequence[Number]], str | None]:
    def check(args: Sequence[Number]) -> str | None:
        if not args[0] < args[1]:
            return f"{name} needs low < high, got {_fmt(args)}"
        if len(args) > 2 and not args[2] > 0:
            return f"{name} needs q > 0, got {_fmt(args)}"
        return None

    return check


def _int_low_high(name: str) -> Callable[[Sequence[Number]], str | None]:
    def check(args: Sequence[Number]) -> str | None:
        if not _all_int(args):
            return f"{name} needs integer bounds, got {_fmt(args)}"
        return _low_high(name)(args)

    return check


def _log_low_high(name: str) -> Callable[[Sequence[Number]], str | None]:
    def check(args: Sequence[Number]) -> str | None:
        if not 0 < args[0] < args[1]:
            return f"{name} needs 0 < low < high, got {_fmt(args)}"
        if len(args) > 2 and not args[2] > 0:
            return f"{name} needs q > 0, got {_fmt(args)}"
        return None

    return check


def _mu_sigma(name: str, log: bool) -> Callable[[Sequence[Number]], str | None]:
    def check(args: Sequence[Number]) -> str | None:
        if not args[1] > 0:
            return f"{name} needs sigma > 0, got {_fmt(args)}"
        if len(args) > 2 and not args[2] > 0:
            return f"{name} needs q > 0, got {_fmt(args)}"
        if log and not (abs(args[0]) <= LOG_MU_LIMIT and args[1] <= LOG_SIGMA_LIMIT):
            return (
                f"{name} needs -{LOG_MU_LIMIT:g} <= mu <= {LOG_MU_LIMIT:g} and sigma <= {LOG_SIGMA_LIMIT:g} "
                f"(mu and sigma are those of the log of the value), got {_fmt(args)}"
            )
        return None

    return check


_INF = math.inf


def _dist(
    name: str,
    params: str,
    check: Callable[[Sequence[Number]], str | None],
    build: Callable[[str, Sequence[Number]], Apply],
    value_range: Callable[[Sequence[Number]], Range],
    integer: Callable[[Sequence[Number]], bool] = lambda a: False,
    log: bool = False,
) -> NumericDistribution:
    return NumericDistribution(name, tuple(params.split()), log, check, build, value_range, integer)


NUMERIC_DISTRIBUTIONS: Mapping[str, NumericDistribution] = {
    d.name: d
    for d in (
        _dist(
            "randint",
            "low high",
            _int_low_high("randint"),
            lambda label, a: hp.randint(label, a[0], a[1]),
            lambda a: Range(a[0], a[1] - 1),
            lambda a: True,
        ),
        _dist(
            "uniformint",
            "low high",
            _int_low_high("uniformint"),
            lambda label, a: hp.uniformint(label, a[0], a[1]),
            lambda a: Range(a[0], a[1]),
            lambda a: True,
        ),
        _dist(
            "uniform",
            "low high",
            _low_high("uniform"),
            lambda label, a: hp.uniform(label, a[0], a[1]),
            lambda a: Range(a[0], a[1]),
        ),
        _dist(
            "quniform",
            "low high q",
            _low_high("quniform"),
            lambda label, a: hp.quniform(label, a[0], a[1], a[2]),
            lambda a: Range(_qround(a[0], a[2]), _qround(a[1], a[2])),
            _all_int,
        ),
        _dist(
            "loguniform",
            "low high",
            _log_low_high("loguniform"),
            lambda label, a: hp.loguniform(label, math.log(a[0]), math.log(a[1])),
            lambda a: Range(a[0], a[1]),
            log=True,
        ),
        _dist(
            "qloguniform",
            "low high q",
            _log_low_high("qloguniform"),
            lambda label, a: hp.qloguniform(label, math.log(a[0]), math.log(a[1]), a[2]),
            lambda a: Range(_qround(a[0], a[2]), _qround(a[1], a[2])),
            _all_int,
            log=True,
        ),
        _dist(
            "normal",
            "mu sigma",
            _mu_sigma("normal", log=False),
            lambda label, a: hp.normal(label, a[0], a[1]),
            lambda a: Range(-_INF, _INF),
        ),
        _dist(
            "qnormal",
            "mu sigma q",
            _mu_sigma("qnormal", log=False),
            lambda label, a: hp.qnormal(label, a[0], a[1], a[2]),
            lambda a: Range(-_INF, _INF),
            _all_int,
        ),
        _dist(
            "lognormal",
            "mu sigma",
            _mu_sigma("lognormal", log=True),
            lambda label, a: hp.lognormal(label, a[0], a[1]),
            lambda a: Range(0.0, _INF, lo_open=True),
            log=True,
        ),
        _dist(
            "qlognormal",
            "mu sigma q",
            _mu_sigma("qlognormal", log=True),
            lambda label, a: hp.qlognormal(label, a[0], a[1], a[2]),
            lambda a: Range(0.0, _INF),
            _all_int,
            log=True,
        ),
    )
}

CHOICE_DISTRIBUTIONS = frozenset({"choice", "pchoice"})
DISTRIBUTION_NAMES = frozenset(NUMERIC_DISTRIBUTIONS) | CHOICE_DISTRIBUTIONS
"""Every name that makes a one-key mapping a distribution."""


def is_number(value: object) -> bool:
    """True for ints and floats, False for booleans and everything else."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_arguments(dist: NumericDistribution, raw: Any) -> tuple[list[Number] | None, str | None]:
    """Read the arguments of ``{name: raw}``: ``(args, None)`` or ``(None, reason)``.

    The reason names the distribution and the expected form, e.g.
    ``uniform needs 2 arguments [low, high], got 3``.
    """
    name = dist.name
    values: list[Any]
    if isinstance(raw, Mapping):
        unknown = [k for k in raw if k not in dist.params]
        if unknown:
            return None, (
                f"{name} got unknown argument {unknown[0]!r}; expected {', '.join(dist.params)} "
                f"(write {{literal: {{{name}: ...}}}} for a plain mapping)"
            )
        missing = [p for p in dist.params if p not in raw]
        if missing:
            return None, f"{name} is missing argument {missing[0]!r}; expected {dist.form}"
        values = [raw[p] for p in dist.params]
    elif isinstance(raw, list | tuple):
        values = list(raw)
        if len(values) != len(dist.params):
            return None, f"{name} needs {len(dist.params)} arguments {dist.form}, got {len(values)}"
    else:
        return None, (
            f"{name} needs a list {dist.form}, got {describe(raw)} "
            f"(write {{literal: {{{name}: ...}}}} for a plain mapping)"
        )
    for param, value in zip(dist.params, values, strict=True):
        if not is_number(value):
            return None, f"{name} needs numbers {dist.form}, got {describe(value)} for {param}"
        if not math.isfinite(value) or abs(value) > MAX_ABS_ARGUMENT:
            return None, f"{name} needs numbers within +-{MAX_ABS_ARGUMENT:g}, got {value!r} for {param}"
    reason = dist.check(values)
    if reason is not None:
        return None, reason
    return values, None
