"""The SQLite store's JSON columns read and written through orjson give the values the standard library
gives: the same numbers (integers beyond 64 bits too), text, nesting and key order."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from hyperhive.store.json_columns import dumps, dumps_clean, loads

VALUES: list[Any] = [
    {"params": {"lr": 0.001, "units": 128, "act": "relu", "opt": {"name": "adam", "beta": 0.9}}},
    {"params.x": [2.973654573327341], "params.z": [2], "params.off": []},
    [0.1, 0.30000000000000004, 1e16, 1e-300, 5e-324, -0.0, 3.0e-7, 1.7976931348623157e308],
    {"seed": 12345678901234567890123, "neg": -9223372036854775809, "u64": 18446744073709551615},
    {"name": 'caf\u00e9 \u2603 \U0001f600 "quoted" \\ back\nline', "empty": {}, "list": [], "none": None},
    {"b": True, "a": False, "z": 0, "order": "kept"},
    "a plain string of 12345678901234567890 digits",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_values_as_the_standard_library(value: Any) -> None:
    for text in (dumps(value), dumps_clean(value)):
        assert loads(text) == json.loads(text) == value
        assert list(_keys(loads(text))) == list(_keys(value))  # key order too


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def test_a_big_integer_is_not_read_as_a_float() -> None:
    """orjson alone reads 2**64 as 1.8446744073709552e+19; the column keeps the integer."""
    value = loads(dumps({"n": 2**64}))["n"]
    assert value == 2**64 and isinstance(value, int)


def test_what_orjson_refuses_takes_the_standard_librarys_way() -> None:
    assert json.loads(dumps_clean({1: "a"})) == {"1": "a"}  # a key that is not a string
    with pytest.raises(TypeError):  # numpy scalars are refused by both, as before
        dumps_clean({"x": np.int64(3)})
    assert dumps_clean({"x": np.float64(0.5)}) == dumps({"x": 0.5})  # a float subclass
    assert math.isnan(loads('{"x": NaN}')["x"])  # never written by the store; still readable


def test_dumps_refuses_a_non_finite_number() -> None:
    with pytest.raises(ValueError):
        dumps({"loss": float("nan")})
