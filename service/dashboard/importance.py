"""Parameter importance: how much of the objective's variation each parameter explains, from
scikit-learn random-forest importances over the trials with a value.

A conditional parameter is judged only over the trials where it is active: for each set of parameters
active in the same trials, one forest is fitted on those trials, and a parameter's importance is its
share in that forest. The forest's features are the parameters active in all of those trials (so whether
an optional block is chosen counts for the choice, not for the absence of the block's own parameters).
Choices are their option index, log-scaled parameters their log10. At most :data:`MAX_ROWS` trials are
used (a fixed-seed sample); the forests are fitted in a background thread and the results cached
per search until another trial is done (:class:`ImportanceCache`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

MAX_ROWS = 1000
MIN_TRIALS = 5
TREES = 32
CACHE_SIZE = 32

log = logging.getLogger(__name__)


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
    """Importances per search, computed off the request path: one background thread fits the forests
    (a search at a time, each search queued at most once), and a request gets the latest result at
    once, with ``fresh`` false while a newer one is being computed (the page asks again)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[Any, list[dict[str, Any]]]] = OrderedDict()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def get(
        self, search_id: str, key: Any, compute: Callable[[], list[dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]] | None, bool]:
        """The latest importances of the search (``None`` before the first is done) and whether they
        are for ``key``; when not, ``compute`` is queued unless it already is."""
        with self._lock:
            hit = self._items.get(search_id)
            if hit is not None:
                self._items.move_to_end(search_id)
                if hit[0] == key:
                    return hit[1], True
            if search_id not in self._queued:
                self._queued.add(search_id)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hh-importance")
                self._pool.submit(self._run, search_id, key, compute)
        return (hit[1] if hit is not None else None), False

    def _run(self, search_id: str, key: Any, compute: Callable[[], list[dict[str, Any]]]) -> None:
        try:
            result = compute()
        except Exception:  # the store went away, the search was deleted: the next request retries
            log.exception("parameter importance of search %s failed", search_id)
            result = None
        with self._lock:
            self._queued.discard(search_id)
            if result is None:
                return
            self._items[search_id] = (key, result)
            self._items.move_to_end(search_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def close(self) -> None:
        """Drop queued work and wait for a fit in progress (it reads the store)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
