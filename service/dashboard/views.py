"""What the dashboard's data endpoints send, from a per-search cache that the store's light change feed
(:meth:`Store.trial_heads`) refreshes: a refresh reads only the trials written since the last, and
never a configuration, metrics, history or parameter value.

``/rows`` sends columns (``{"id": [...], "n": [...], "s": [...], "v": [...], "ver": [...]}``: trial id,
number, state, objective value or null, version) of every trial changed after a revision: what the
optimisation history and the choice of learning curves need. Parameter values (``p``: one value per
parameter in :func:`param_meta` order, null when inactive; a choice's option index) are read only
for the rows a view shows (a table page, the parameter plots' sample, the importance sample) through
:meth:`Store.trial_rows_of`, and kept per trial version; learning curves likewise
(:meth:`SearchRows.curves_of`). Both caches are bounded.

Each trial carries the cache's revision at which it last changed, so a browser asks for
``since=<revision>`` and gets only newer ones; ``epoch`` names the cache instance (a restarted server
or another process has another one, and the browser then reloads everything).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hyperhive.models import Search
from hyperhive.store.base import Store
from hyperhive.store.rows import TrialHead, TrialRow

MAX_CURVE_POINTS = 60
MAX_CACHED_SEARCHES = 16
MAX_CACHED_TRIALS = 200_000
"""Trials the row cache keeps over all its searches (least recently viewed searches dropped first)."""
MAX_CACHED_CURVES = 2_000
"""Learning curves kept per search (each at most :data:`MAX_CURVE_POINTS` points)."""
MAX_CACHED_PARAMS = 20_000
"""Trials whose parameter values are kept per search."""


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


def param_values(row: TrialRow, labels: list[str]) -> list[float | None]:
    """The row's parameter values in ``labels`` order: null for an inactive one, a choice's index."""
    vals = row.vals or {}
    p: list[float | None] = []
    for label in labels:
        v = vals.get(label)
        p.append(_number(v[0]) if isinstance(v, list) and v else None)
    return p


def head_row(h: TrialHead, p: list[float | None] | None = None) -> dict[str, Any]:
    """A trial as a table page or the parameter plots get it."""
    row = {
        "id": h.id,
        "n": h.number,
        "s": h.state.value,
        "v": _number(h.value),
        "ver": h.version,
        "t0": _number(h.started_at),
        "t1": _number(h.finished_at),
    }
    if p is not None:
        row["p"] = p
    return row


def columns(heads: list[TrialHead]) -> str:
    """``heads`` as the JSON object of columns ``/rows`` sends: the columns come out of the tuples by
    ``zip`` and go through one ``json.dumps`` (a dict per trial costs several times more at 10,000
    trials). A state is a ``str`` enum, encoded as its value."""
    if not heads:
        return '{"id":[],"n":[],"s":[],"v":[],"ver":[]}'
    ids, numbers, states, values, _, _, versions = zip(*heads, strict=True)
    if not all(v is None or math.isfinite(v) for v in values):
        values = tuple(v if v is None or math.isfinite(v) else None for v in values)
    return json.dumps(
        {"id": ids, "n": numbers, "s": states, "v": values, "ver": versions},
        separators=(",", ":"),
        allow_nan=False,
    )


_gc_lock = threading.Lock()
_gc_pausers = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic cyclic garbage collection inside (threads nest: the last one out turns it back
    on). Reading 10,000 trials makes some 20,000 tuples, which set off several collections; in an API
    process holding ~140,000 objects from its imports those cost 300-500 ms of a cold load. Tuples
    of plain values make no cycles, so nothing is left for the collector."""
    global _gc_pausers
    with _gc_lock:
        _gc_pausers += 1
        if _gc_pausers == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                gc.enable()


class Bounded(OrderedDict[str, Any]):
    """A dict that forgets its least recently set entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class SearchRows:
    """One search's trials (light heads) refreshed through the store's change feed, plus the
    parameter values and learning curves read on demand for the trials a view shows."""

    labels: list[str]
    params: list[dict[str, Any]]
    metric: str
    epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    cursor: Any = None
    revision: int = 0
    heads: dict[str, tuple[int, TrialHead]] = field(default_factory=dict)
    values: Bounded = field(default_factory=lambda: Bounded(MAX_CACHED_PARAMS))
    """``{trial_id: (version, p)}``: parameter values read so far, valid while the version holds."""
    curves: Bounded = field(default_factory=lambda: Bounded(MAX_CACHED_CURVES))
    """``{trial_id: (version, curve)}``: the curves read so far, valid while the version holds."""
    full_text: tuple[int, str] | None = None
    """The columns of every trial at a revision, encoded once."""
    memo: dict[str, tuple[Any, bytes]] = field(default_factory=dict)
    """Answers of other endpoints (``{name: (key, body)}``), valid while their key holds."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, store: Store, search_id: str) -> None:
        with self.lock, gc_paused():
            changed, self.cursor = store.trial_heads(search_id, self.cursor)
            for h in changed:
                self.revision += 1
                self.heads[h.id] = (self.revision, h)

    def since(self, revision: int) -> list[TrialHead]:
        with self.lock:
            return [h for rev, h in self.heads.values() if rev > revision]

    def all_heads(self) -> list[TrialHead]:
        with self.lock:
            return [h for _, h in self.heads.values()]

    def encoded_since(self, revision: int) -> str:
        """The columns of the trials changed after ``revision`` (0: all, encoded once per revision)."""
        if revision > 0:
            return columns(self.since(revision))
        with self.lock:
            if self.full_text is not None and self.full_text[0] == self.revision:
                return self.full_text[1]
            at, heads = self.revision, [h for _, h in self.heads.values()]
        with gc_paused():
            text = columns(heads)
        with self.lock:
            self.full_text = (at, text)
        return text

    def values_of(self, store: Store, heads: Iterable[TrialHead]) -> dict[str, list[float | None]]:
        """``{trial_id: p}`` for ``heads``, read from the store only for trials not read at their
        current version yet."""
        heads = list(heads)
        with self.lock:
            stale = [h.id for h in heads if self.values.get(h.id, (None,))[0] != h.version]
        read = {r.id: (r.version, param_values(r, self.labels)) for r in store.trial_rows_of(stale)}
        out: dict[str, list[float | None]] = {}
        with self.lock:
            for tid, entry in read.items():
                self.values.put(tid, entry)
            for h in heads:
                got = read.get(h.id) or self.values.get(h.id)
                if got is not None:
                    out[h.id] = got[1]
        return out

    def curves_of(self, store: Store, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``{id: {"ver", "c"}}`` for those of ``ids`` that are trials of this search: the objective per
        epoch (at most :data:`MAX_CURVE_POINTS` points), read from the store only for trials not read
        at their current version yet."""
        with self.lock:
            known = {i: self.heads[i][1].version for i in ids if i in self.heads}
            stale = [i for i, ver in known.items() if self.curves.get(i, (None,))[0] != ver]
        read = {t.id: (t.version, _curve(t.history, self.metric)) for t in store.get_trials(stale)}
        with self.lock:
            for tid, entry in read.items():
                self.curves.put(tid, entry)
            got = {i: read.get(i) or self.curves.get(i) for i in known}
        return {i: {"ver": e[0], "c": e[1]} for i, e in got.items() if e is not None}


class RowCache:
    """Trials of the most recently viewed searches: at most ``size`` searches and ``max_trials``
    trials over all of them (least recently viewed dropped first; the one asked for always stays)."""

    def __init__(self, size: int = MAX_CACHED_SEARCHES, max_trials: int = MAX_CACHED_TRIALS) -> None:
        self.size = size
        self.max_trials = max_trials
        self._items: OrderedDict[str, SearchRows] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, store: Store, search: Search) -> SearchRows:
        """The search's rows, brought up to date."""
        with self._lock:
            entry = self._items.get(search.id)
            if entry is None:
                params = param_meta(search)
                entry = SearchRows(
                    labels=[p["label"] for p in params], params=params, metric=search.objective_metric
                )
                self._items[search.id] = entry
            self._items.move_to_end(search.id)
        entry.refresh(store, search.id)
        with self._lock:
            while len(self._items) > 1 and (len(self._items) > self.size or self._trials() > self.max_trials):
                self._items.popitem(last=False)
        return entry

    def _trials(self) -> int:
        return sum(len(e.heads) for e in self._items.values())
