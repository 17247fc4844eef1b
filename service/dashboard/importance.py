"""Parameter importance: how much of the objective's variation each parameter explains, from
scikit-learn random-forest importances over the trials with a value.

A conditional parameter is judged only over the trials where it is active: for each set of parameters
active in the same trials, one forest is fitted on those trials, and a parameter's importance is its
share in that forest. The forest's features are the parameters active in all of those trials (so whether
an optional block is chosen counts for the choice, not for the absence of the block's own parameters).
Choices are their option index, log-scaled parameters their log10. At most :data:`MAX_ROWS` trials are
used (a fixed-seed sample), and results are cached per search until another trial is done.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

MAX_ROWS = 1000
MIN_TRIALS = 5
TREES = 32
CACHE_SIZE = 32


def _features(rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> np.ndarray:
    x = np.full((len(rows), len(params)), np.nan)
    for i, row in enumerate(rows):
        for j, (p, v) in enumerate(zip(params, row["p"], strict=False)):
            if v is None:
                continue
            if p.get("log") and not p.get("options") and v > 0:
                v = math.log10(v)
            x[i, j] = float(v)
    return x


def importances(rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"label", "importance" (0..1 or None when too few trials), "trials"}]``, most important first."""
    from sklearn.ensemble import RandomForestRegressor

    scored = [r for r in rows if r["s"] == "done" and r["v"] is not None]
    if len(scored) > MAX_ROWS:
        pick = np.random.default_rng(0).choice(len(scored), MAX_ROWS, replace=False)
        scored = [scored[i] for i in sorted(pick)]
    out: list[dict[str, Any]] = [{"label": p["label"], "importance": None, "trials": 0} for p in params]
    if not scored or not params:
        return out
    x = _features(scored, params)
    y = np.array([r["v"] for r in scored], dtype=float)
    active = ~np.isnan(x)
    groups: dict[bytes, list[int]] = {}
    for j in range(len(params)):
        groups.setdefault(active[:, j].tobytes(), []).append(j)
    for members in groups.values():
        mask = active[:, members[0]]
        n = int(mask.sum())
        for j in members:
            out[j]["trials"] = n
        if n < MIN_TRIALS or np.ptp(y[mask]) == 0:
            continue
        forest = RandomForestRegressor(
            n_estimators=TREES, min_samples_leaf=2, max_features=1.0, random_state=0, n_jobs=1
        )
        # features: the parameters active in every one of these trials
        cols = [k for k in range(len(params)) if active[mask, k].all()]
        forest.fit(x[np.ix_(mask, cols)], y[mask])
        for j in members:
            out[j]["importance"] = float(forest.feature_importances_[cols.index(j)])
    out.sort(key=lambda d: -1.0 if d["importance"] is None else d["importance"], reverse=True)
    return out


class ImportanceCache:
    """Importances per search, recomputed only when the set of done trials changed."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[Any, list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, search_id: str, key: Any, rows: list[dict[str, Any]], params: list[dict[str, Any]]) -> Any:
        with self._lock:
            hit = self._items.get(search_id)
            if hit is not None and hit[0] == key:
                self._items.move_to_end(search_id)
                return hit[1]
        result = importances(rows, params)
        with self._lock:
            self._items[search_id] = (key, result)
            self._items.move_to_end(search_id)
            while len(self._items) > CACHE_SIZE:
                self._items.popitem(last=False)
        return result
