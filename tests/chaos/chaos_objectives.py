"""Objectives for the chaos suite (allowed with ``--allow-objective chaos_objectives``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def napping_square(params: Mapping[str, Any]) -> float:
    """(x - 1)**2 after sleeping ``params["nap"]`` seconds: a short trial that a kill can land in."""
    time.sleep(float(params.get("nap", 0.0)))
    return (float(params["x"]) - 1.0) ** 2
