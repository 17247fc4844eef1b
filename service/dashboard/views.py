"""What the dashboard's data endpoints send: compact trial rows, kept per search in a cache that
:meth:`Store.trials_changed_since` refreshes (a refresh reads only the trials written since the last).

A row is ``{"id", "n" (number), "s" (state), "v" (objective value or null), "p" (one value per parameter
in :func:`param_meta` order, null when the parameter is inactive; a choice's option index), "c" (the
objective per epoch as ``[epoch, value]`` pairs, at most :data:`MAX_CURVE_POINTS`), "t0", "t1" (start and
finish times), "w" (worker)}``. Each row carries the cache's revision at which it last changed, so a
browser asks for ``since=<revision>`` and gets only newer rows; ``epoch`` names the cache instance (a
restarted server or another process has another one, and the browser then reloads everything).
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hyperhive.models import Search, Trial
from hyperhive.store.base import Store

MAX_CURVE_POINTS = 60
MAX_CACHED_SEARCHES = 16


def _option_label(node: Any, index: int) -> str:
    from search_spaces.nodes import Const

    if isinstance(node, Const):
        v = node.value
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return f"option {index}"


def _numbered_choice_labels(document: dict[str, Any]) -> dict[str, list[str]]:
    """For each choice without option names, its options' values as labels (``16``, ``relu``), so a
    plot says what was chosen rather than the option's index."""
    from search_spaces.compiler import parse_sections
    from search_spaces.nodes import Choice, iter_params

    out = {}
    for node in parse_sections(document).values():
        for p in iter_params(node):
            if isinstance(p, Choice) and not p.names:
                out[p.path] = [_option_label(o, i) for i, o in enumerate(p.options)]
    return out


def param_meta(search: Search) -> list[dict[str, Any]]:
    """The search's parameters for plots: label, distribution, option labels of a choice, integer, log."""
    from search_spaces import parameters

    try:
        params = parameters(search.document)
        numbered = _numbered_choice_labels(search.document)
    except Exception:  # a stored document that no longer parses: show trials without parameter axes
        return []
    return [
        {
            "label": p.label,
            "distribution": p.distribution,
            "options": numbered.get(p.label, list(p.options)) if p.options else [],
            "integer": p.integer,
            "log": p.log,
        }
        for p in params
    ]


def _encode(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float) and math.isfinite(v):
        return v
    return None


def _curve(history: list[dict[str, Any]], metric: str) -> list[list[float]]:
    points = []
    for i, h in enumerate(history):
        if not isinstance(h, dict):
            continue
        y = _number(h.get(metric))
        if y is not None:
            x = _number(h.get("epoch"))
            points.append([x if x is not None else i + 1, y])
    if len(points) > MAX_CURVE_POINTS:
        step = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
        points = [points[round(i * step)] for i in range(MAX_CURVE_POINTS)]
    return points


def compact_row(trial: Trial, labels: list[str], metric: str) -> dict[str, Any]:
    vals = trial.vals or {}
    p: list[Any] = []
    for label in labels:
        v = vals.get(label)
        p.append(_number(v[0]) if isinstance(v, list) and v else None)
    return {
        "id": trial.id,
        "n": trial.number,
        "s": str(trial.state),
        "v": _number(trial.value),
        "p": p,
        "c": _curve(trial.history or [], metric),
        "t0": trial.started_at,
        "t1": trial.finished_at,
        "w": trial.worker_id,
    }


@dataclass
class SearchRows:
    """One search's compact rows, refreshed through the store's change feed."""

    labels: list[str]
    metric: str
    epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    cursor: Any = None
    revision: int = 0
    rows: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    text: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each row as JSON, with and without its curve: encoded once per change, not per request."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, store: Store, search_id: str) -> None:
        with self.lock:
            trials, self.cursor = store.trials_changed_since(search_id, self.cursor)
            for t in trials:
                self.revision += 1
                row = compact_row(t, self.labels, self.metric)
                self.rows[t.id] = (self.revision, row)
                self.text[t.id] = (_encode(row), _encode({**row, "c": []}))

    def encoded(self, rows: list[dict[str, Any]], with_curve: set[str] | None) -> str:
        """``rows`` as a JSON array; curves only for ids in ``with_curve`` (all when ``None``)."""
        with self.lock:
            parts = [
                self.text[r["id"]][0 if with_curve is None or r["id"] in with_curve else 1] for r in rows
            ]
        return "[" + ",".join(parts) + "]"

    def since(self, revision: int) -> list[dict[str, Any]]:
        with self.lock:
            return [row for rev, row in self.rows.values() if rev > revision]

    def all_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [row for _, row in self.rows.values()]


class RowCache:
    """Rows of the most recently viewed searches (least recently used dropped first)."""

    def __init__(self, size: int = MAX_CACHED_SEARCHES) -> None:
        self.size = size
        self._items: OrderedDict[str, SearchRows] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, store: Store, search: Search) -> SearchRows:
        """The search's rows, brought up to date."""
        with self._lock:
            entry = self._items.get(search.id)
            if entry is None:
                labels = [p["label"] for p in param_meta(search)]
                entry = SearchRows(labels=labels, metric=search.objective_metric)
                self._items[search.id] = entry
            self._items.move_to_end(search.id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        entry.refresh(store, search.id)
        return entry
