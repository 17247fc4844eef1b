"""JSON text of the SQLite store's columns, through orjson where it gives the same JSON.

A worker's claim and report write and read a handful of JSON columns (the configuration, hyperopt's
vals, metrics, info); with the standard library that was about a tenth of a random trial's cost.
:func:`loads` parses with orjson, except text holding a run of 19 or more digits (orjson would read an
integer beyond 64 bits as a float, so such text goes to :mod:`json`, as does what orjson refuses:
``NaN`` literals, which the store never writes). :func:`dumps` writes with the
standard library and refuses non-finite numbers; :func:`dumps_clean`, for values already made JSON-safe
(metrics and info after ``json_safe``, a suggestion's values), writes the same compact text with orjson
(which would write a non-finite float as ``null`` rather than refuse it), falling back to :func:`dumps`
for what orjson does not take (numpy scalars, keys that are not strings, integers beyond 64 bits).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text; a non-finite float raises ValueError."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def dumps_clean(value: Any) -> str:
    """:func:`dumps` for a value holding no non-finite float (see the module docstring)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return dumps(value)


_LONG_DIGITS = re.compile(r"[0-9]{19}")


def loads(text: str) -> Any:
    """The value of JSON text (see the module docstring)."""
    if _LONG_DIGITS.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
