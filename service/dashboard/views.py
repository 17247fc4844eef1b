"""What the dashboard's data endpoints send: compact trial rows, kept per search in a cache that
:meth:`Store.trial_rows` refreshes (a refresh reads only the trials written since the last).

A row is ``{"id", "n" (number), "s" (state), "v" (objective value or null), "p" (one value per parameter
in :func:`param_meta` order, null when the parameter is inactive; a choice's option index), "e" (epochs
in its history), "ver" (the trial's version), "t0", "t1" (start and finish times), "w" (worker)}``,
made from :meth:`Store.trial_rows` (no configuration, metrics or history is read). Learning curves
are read on demand (:meth:`SearchRows.curves_of`), for the trials the page draws.

Each row carries the cache's revision at which it last changed, so a browser asks for
``since=<revision>`` and gets only newer rows; ``epoch`` names the cache instance (a restarted server
or another process has another one, and the browser then reloads everything).
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from hyperhive.models import Search
from hyperhive.store.base import Store
from hyperhive.store.rows import TrialRow

MAX_CURVE_POINTS = 60
MAX_CACHED_SEARCHES = 16


def _option_label(node: Any, index: int) -> str:
    from hyperhive.search_spaces.nodes import Const

    if isinstance(node, Const):
        v = node.value
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return f"option {index}"


def _numbered_choice_labels(document: dict[str, Any]) -> dict[str, list[str]]:
    """For each choice without option names, its options' values as labels (``16``, ``relu``), so a
    plot says what was chosen rather than the option's index."""
    from hyperhive.search_spaces.compiler import parse_sections
    from hyperhive.search_spaces.nodes import Choice, iter_params

    out = {}
    for node in parse_sections(document).values():
        for p in iter_params(node):
            if isinstance(p, Choice) and not p.names:
                out[p.path] = [_option_label(o, i) for i, o in enumerate(p.options)]
    return out


def param_meta(search: Search) -> list[dict[str, Any]]:
    """The search's parameters for plots: label, distribution, option labels of a choice, integer, log."""
    from hyperhive.search_spaces import parameters

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


def compact_row(row: TrialRow, labels: list[str]) -> dict[str, Any]:
    vals = row.vals or {}
    p: list[Any] = []
    for label in labels:
        v = vals.get(label)
        p.append(_number(v[0]) if isinstance(v, list) and v else None)
    return {
        "id": row.id,
        "n": row.number,
        "s": str(row.state),
        "v": _number(row.value),
        "p": p,
        "e": row.epochs,
        "ver": row.version,
        "t0": _number(row.started_at),
        "t1": _number(row.finished_at),
        "w": row.worker_id,
    }


def _json_number(v: float | None) -> str:
    return "null" if v is None else repr(v)


def encode_row(row: dict[str, Any]) -> str:
    """A row of :func:`compact_row` as JSON, written out directly: ``json.dumps`` per row is the
    largest cost of a cold load of 10,000 trials. Numbers there are finite (``_number``) and their
    ``repr`` is valid JSON; strings go through the JSON string encoder."""
    w = row["w"]
    return (
        f'{{"id":{_json_string(row["id"])},"n":{int(row["n"])},"s":{_json_string(row["s"])},'
        f'"v":{_json_number(row["v"])},"p":[{",".join(map(_json_number, row["p"]))}],'
        f'"e":{int(row["e"])},"ver":{int(row["ver"])},"t0":{_json_number(row["t0"])},'
        f'"t1":{_json_number(row["t1"])},"w":{"null" if w is None else _json_string(w)}}}'
    )


@dataclass
class SearchRows:
    """One search's compact rows, refreshed through the store's compact change feed
    (:meth:`Store.trial_rows`), and the learning curves asked for so far (read on demand)."""

    labels: list[str]
    metric: str
    epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    cursor: Any = None
    revision: int = 0
    rows: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    """Each row as JSON: encoded once per change, not per request."""
    curves: dict[str, tuple[int, list[list[float]]]] = field(default_factory=dict)
    """``{trial_id: (version, curve)}``: the curves read so far, valid while the row's version holds."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, store: Store, search_id: str) -> None:
        with self.lock:
            changed, self.cursor = store.trial_rows(search_id, self.cursor)
            for t in changed:
                self.revision += 1
                row = compact_row(t, self.labels)
                self.rows[t.id] = (self.revision, row)
                self.text[t.id] = encode_row(row)

    def encoded(self, rows: list[dict[str, Any]]) -> str:
        """``rows`` as a JSON array."""
        with self.lock:
            return "[" + ",".join(self.text[r["id"]] for r in rows) + "]"

    def since(self, revision: int) -> list[dict[str, Any]]:
        with self.lock:
            return [row for rev, row in self.rows.values() if rev > revision]

    def all_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [row for _, row in self.rows.values()]

    def curves_of(self, store: Store, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``{id: {"ver", "c"}}`` for those of ``ids`` that are trials of this search: the objective per
        epoch (at most :data:`MAX_CURVE_POINTS` points), read from the store only for trials not read
        at their current version yet."""
        with self.lock:
            known = {i: self.rows[i][1]["ver"] for i in ids if i in self.rows}
            stale = [i for i, ver in known.items() if self.curves.get(i, (None,))[0] != ver]
        if stale:
            read = {t.id: (t.version, _curve(t.history, self.metric)) for t in store.get_trials(stale)}
            with self.lock:
                self.curves.update(read)
        with self.lock:
            return {i: {"ver": self.curves[i][0], "c": self.curves[i][1]} for i in known if i in self.curves}


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
