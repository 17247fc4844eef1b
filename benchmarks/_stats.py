"""What the benchmarks print of a set of timings: the median and the 95th percentile (nearest rank:
the smallest sample at or above 95 % of them; with fewer than 20 samples, that is the largest)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable


def median(values: Iterable[float]) -> float:
    v = list(values)
    return statistics.median(v) if v else math.nan


def p95(values: Iterable[float]) -> float:
    v = sorted(values)
    return v[max(0, math.ceil(0.95 * len(v)) - 1)] if v else math.nan
