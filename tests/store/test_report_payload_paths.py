"""The quick paths of a report's payload handling give what the full walks give.

json_safe takes plain dicts through orjson; cap_info skips BSON encoding when a JSON-length bound
already proves the size; report_outcome caps flat metrics once. Each is checked against the slow path.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from hyperhive.models import Search, TrialResult
from hyperhive.payloads import (
    MAX_INFO_BYTES,
    MAX_STRING_CHARS,
    bson_size,
    cap_info,
    surely_within,
)
from hyperhive.store import base
from hyperhive.store.base import json_safe, report_outcome
from tests.store.test_rules import search


def _walk(v: Any) -> Any:
    """json_safe's walk alone (its orjson path bypassed): the reference."""
    if isinstance(v, dict):
        return {str(k): _walk(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_walk(x) for x in v]
    if hasattr(v, "tolist"):
        return _walk(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _random_plain(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.choice(
        ["int", "float", "str", "none", "bool", "list", "tuple", "dict"] if depth < 3 else ["int"]
    )
    if kind == "int":
        return rnd.choice([0, -1, 7, 2**40, -(2**62)])
    if kind == "float":
        return rnd.choice([0.1, -0.0, 1e300, 5e-324, math.nan, math.inf, -math.inf, rnd.random()])
    if kind == "str":
        return rnd.choice(["", "é", "a\nb", "x" * 50])
    if kind == "none":
        return None
    if kind == "bool":
        return rnd.random() < 0.5
    items = [_random_plain(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    return {f"k{i}": x for i, x in enumerate(items)}


def test_json_safe_of_plain_dicts_is_the_walks() -> None:
    rnd = random.Random(7)
    for _ in range(500):
        value = {f"m{i}": _random_plain(rnd) for i in range(rnd.randint(0, 6))}
        got, want = json_safe(value), _walk(value)
        assert repr(got) == repr(want)  # repr: NaN-free, -0.0 and int/float kinds compared exactly


@pytest.mark.parametrize(
    "value",
    [
        {"acc": np.float32(0.1), "cm": np.arange(4).reshape(2, 2)},  # numpy: the walk's .tolist()
        {1: 2.0, "b": [np.nan]},  # a key that is not a string: str(key)
        {"big": 2**70},  # beyond 64 bits
        {"nested": {"deep": (np.int64(3), math.inf)}},
    ],
)
def test_json_safe_falls_back_to_the_walk_for_what_orjson_refuses(value: dict[str, Any]) -> None:
    assert repr(json_safe(value)) == repr(_walk(value))


def test_numpy_float32_keeps_its_exact_double() -> None:
    # orjson would write float32 0.1 as 0.1; the walk stores the double it is (0.10000000149011612)
    assert json_safe({"acc": np.float32(0.1)}) == {"acc": float(np.float32(0.1))}


SHAPES: list[Any] = [
    [0] * 4000,
    [[]] * 3000,
    [""] * 3000,
    [None] * 3000,
    [True] * 3000,
    [1.0] * 3000,
    [[0]] * 2000,
    [{}] * 3000,
    {str(i): 0 for i in range(2000)},
    {"a": [[[[0]]]] * 900},
]


@pytest.mark.parametrize("value", SHAPES, ids=[f"shape{i}" for i in range(len(SHAPES))])
def test_the_size_bound_never_promises_what_bson_breaks(value: Any) -> None:
    size = bson_size(value)
    for limit in (size - 1, size // 2, 1024):
        assert not surely_within(value, limit)  # never "within" a limit BSON is over
    assert surely_within(value, 8 * size)


def test_the_bound_says_no_to_what_orjson_cannot_write() -> None:
    assert not surely_within({"s": {1, 2}}, MAX_INFO_BYTES)


def test_cap_info_still_cuts_an_oversized_info() -> None:
    info = {"big": "x" * 900, **{f"k{i}": list(range(400)) for i in range(60)}}
    out = cap_info(info)
    assert out["truncated"] is True
    assert bson_size(out) <= MAX_INFO_BYTES


def _search() -> Search:
    return search(objective_metric="loss", objective_mode="min")


@pytest.mark.parametrize(
    "metrics",
    [
        {"loss": 0.5, "acc": 0.9, "name": "x" * (MAX_STRING_CHARS + 50), "none": None, "flag": True},
        {"loss": 0.5, "nan": math.nan, "n": 3},
        {"loss": 0.5, "nested": {"a": [1, 2]}},
        {"loss": 0.5, **{f"m{i}": i for i in range(300)}},  # over MAX_METRICS: notes, the second pass
    ],
)
def test_flat_metrics_capped_once_store_what_two_passes_stored(
    metrics: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = report_outcome(_search(), "token", TrialResult.done(metrics)).metrics
    monkeypatch.setattr(base, "_FLAT", frozenset())  # no value counts as flat: always both passes
    both = report_outcome(_search(), "token", TrialResult.done(metrics)).metrics
    if "name" in metrics:  # cut once, its note says the length reported (two passes noted the first cut's)
        assert quick.pop("name").endswith(f"({len(metrics['name'])} characters, truncated)")
        assert len(both.pop("name")) <= MAX_STRING_CHARS + 40
    assert quick == both
