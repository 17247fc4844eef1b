"""Function objectives for the worker tests (allowed with ``--allow-objective hh_objectives``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def slow_square(params: Mapping[str, Any]) -> float:
    """(x - 1)**2 after sleeping ``params["sleep"]`` seconds (default 0)."""
    time.sleep(float(params.get("sleep", 0.0)))
    return (float(params["x"]) - 1.0) ** 2


def boom(params: Mapping[str, Any]) -> float:
    """Always raises, from a nested call so the traceback has more than one frame."""

    def inner() -> float:
        raise RuntimeError(f"objective exploded at x={params.get('x')}")

    return inner()


def report_modules(params: Mapping[str, Any]) -> dict[str, Any]:
    """Whether Keras or TensorFlow were imported in this process when the trial ran."""
    import sys

    return {"loss": 0.0, "keras": "keras" in sys.modules, "tensorflow": "tensorflow" in sys.modules}


def numpy_value(params: Mapping[str, Any]) -> Any:
    """``x`` as a numpy float32 scalar."""
    import numpy as np

    return np.float32(params["x"])


def text(params: Mapping[str, Any]) -> str:
    """Not a number."""
    return "high"
