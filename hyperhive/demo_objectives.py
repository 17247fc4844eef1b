"""Cheap pure-Python objectives for function searches (``objective.function``), the examples and tests;
the one module workers allow by default (``HYPERHIVE_ALLOW_OBJECTIVE``).

Each takes the sampled ``params`` mapping and returns a loss (or a dict with ``loss``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any


def branin(params: Mapping[str, Any]) -> float:
    """The Branin function of ``x`` in [-5, 10] and ``y`` in [0, 15]; minimum 0.397887 at
    (-pi, 12.275), (pi, 2.275) and (9.42478, 2.475)."""
    x, y = float(params["x"]), float(params["y"])
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _numbers(v)


def quadratic(params: Mapping[str, Any]) -> float:
    """Sum of (v - 0.3)**2 over every number in ``params`` (nested ones included, booleans not)."""
    return sum((v - 0.3) ** 2 for v in _numbers(params))


def conditional_toy(params: Mapping[str, Any]) -> dict[str, Any]:
    """For conditional spaces: ``{"loss": quadratic(params) + 0.01 * n, "extra": {"n_numbers": n}}``
    where n counts the numbers present, so branches with fewer parameters are slightly favoured."""
    n = sum(1 for _ in _numbers(params))
    return {"loss": quadratic(params) + 0.01 * n, "extra": {"n_numbers": n}}
