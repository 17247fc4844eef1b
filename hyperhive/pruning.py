"""Pruning: whether a running trial stops early, read from its search's done trials.

The median rule (``training.pruning: {type: median, warmup_epochs, min_trials}``): prune when the
trial's latest epoch value is worse than the median of the done trials' values at the same epoch,
once ``min_trials`` done trials reached that epoch and ``warmup_epochs`` have passed.
"""

from __future__ import annotations

import statistics
import threading
from typing import TYPE_CHECKING, Any

from hyperhive.models import Search, Trial, TrialState, finite_or_none

if TYPE_CHECKING:
    from hyperhive.policy import TrialFeed

History = list[dict[str, Any]]


class MedianPruner:
    """The median rule, with the done trials' histories cached per search (a done trial never changes
    again, so only the trials written since the last look are read)."""

    def __init__(self) -> None:
        self._done: dict[str, tuple[Any, dict[str, History]]] = {}
        self._lock = threading.Lock()

    def should_prune(self, feed: TrialFeed, search: Search, trial: Trial) -> bool:
        pruning = (search.document.get("training") or {}).get("pruning") or {}
        if not isinstance(pruning, dict) or pruning.get("type", "none") != "median" or not trial.history:
            return False
        latest = trial.history[-1]
        epoch = int(latest.get("epoch", len(trial.history)))
        if epoch <= int(pruning.get("warmup_epochs", 1)):
            return False
        metric = search.objective_metric
        mine = finite_or_none(latest.get(metric))
        if mine is None:
            return False
        values = []
        for history in self._done_histories(feed, search.id).values():
            for row in history:
                if int(row.get("epoch", -1)) == epoch:
                    v = finite_or_none(row.get(metric))
                    if v is not None:
                        values.append(v)
                    break
        if len(values) < int(pruning.get("min_trials", 5)):
            return False
        median = statistics.median(values)
        return mine < median if search.objective_mode == "max" else mine > median

    def _done_histories(self, feed: TrialFeed, search_id: str) -> dict[str, History]:
        with self._lock:
            cursor, cache = self._done.get(search_id, (None, {}))
            changed, cursor = feed.trials_changed_since(search_id, cursor)
            for t in changed:
                if t.state == TrialState.DONE:
                    cache[t.id] = t.history
            self._done[search_id] = (cursor, cache)
            return cache

    def forget(self, search_id: str) -> None:
        with self._lock:
            self._done.pop(search_id, None)
