"""Plain helpers over JSON-like records, shared by the API, the exports and the CLI (no pydantic here,
so the CLI stays quick to start)."""

from __future__ import annotations

import json
import math
from typing import Any


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{path: leaf}`` for a JSON-like value; paths are ``a.b[2].c``. Empty containers and lists of
    scalars are leaves (lists of scalars as JSON text)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{path}[{i}]"))
    elif isinstance(value, list | dict):
        out[path] = json.dumps(value)
    else:
        out[path] = value
    return out


def finite(v: Any) -> float | None:
    """``v`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that are single finite numbers (drops per-class lists, confusion matrices, ...)."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        f = finite(v)
        if f is not None:
            out[k] = f
    return out
