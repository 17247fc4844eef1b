"""TPE's view of one search's trials, kept between asks and updated one changed trial at a time.

hyperopt's ``tpe.suggest`` reads its history from a ``Trials`` object: on every ask it walks every trial
document for the best loss per trial id (``best_docs``), rebuilds every parameter's observed values
(``miscs_to_idxs_vals``), and the caller must have built that ``Trials`` from every trial. At thousands
of trials that is most of an ask outside the density kernels. :class:`History` holds the same facts
as arrays and lists that are appended to: the trial ids in ascending order with their losses (infinite
for a trial that is unfinished or failed, as in ``tpe.suggest``), per parameter the ids and values of
the trials that have it (in trial-id order, as ``miscs_to_idxs_vals`` gives them), the configurations in
flight and the exact configurations of the trials that left flight (for
:class:`~hyperhive.tpe_parallel.ParallelTPE`).

Invalidation rule: :meth:`History.set` with a trial's new loss or state updates it in place; a new
trial is inserted at its id's place (appended, in the usual case) and a removed one (failed, or
cancelled before it ran: :meth:`History.remove`) deleted from its place; only a trial whose sampled
values change marks the per-parameter observations stale, and the next read rebuilds them from the
values held (in memory, no store read).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

Vals = dict[str, list[Any]]
"""hyperopt's sampled values of one trial: ``{label: [value]}`` for an active parameter, ``[]`` else."""
ExactKey = tuple[tuple[str, Any], ...]


def exact_key(vals: Vals) -> ExactKey:
    """A hashable key equal for two trials with exactly the same active parameters and values."""
    return tuple(sorted((k, v[0]) for k, v in vals.items() if v))


class History:
    """One search's trials as TPE reads them; ``labels`` are the space's parameter labels.

    It holds the trials ``tpe.suggest`` reads from ``Trials.trials``: queued, running and finished
    ones. A failed trial (hyperopt's ``JOB_STATE_ERROR``) is not among them: :meth:`remove` it."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = list(labels)
        self.clear()

    def clear(self) -> None:
        """Forget every trial."""
        self._tids: list[int] = []  # ascending
        self._losses: list[float] = []
        self._vals: list[Vals] = []
        self._in_flight: dict[int, Vals] = {}
        self.finished: set[ExactKey] = set()
        """Exact configurations of the trials that were seen finished; kept when such a trial runs
        again or is removed."""
        self._obs_tids: dict[str, list[int]] = {k: [] for k in self.labels}
        self._obs_vals: dict[str, list[Any]] = {k: [] for k in self.labels}
        self._obs_stale = False
        self._obs_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tid_array: np.ndarray | None = None
        self._loss_array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._tids)

    def _find(self, tid: int) -> tuple[int, bool]:
        i = bisect.bisect_left(self._tids, tid)
        return i, i < len(self._tids) and self._tids[i] == tid

    def __contains__(self, tid: object) -> bool:
        return isinstance(tid, int) and self._find(tid)[1]

    def set(self, tid: int, vals: Vals, loss: float | None, in_flight: bool) -> None:
        """Add trial ``tid`` or update it: its sampled ``vals``, its ``loss`` (None counts as infinite,
        as in ``tpe.suggest``) and whether it is in flight (queued or running) or finished."""
        loss = math.inf if loss is None else float(loss)
        pos, held = self._find(tid)
        if not held:
            for label, v in vals.items():
                if len(v) > 1:
                    raise ValueError(f"trial {tid}: more than one value for {label!r}")
            self._tids.insert(pos, tid)
            self._losses.insert(pos, loss)
            self._vals.insert(pos, vals)
            self._tid_array = None
            if not self._obs_stale:
                for label, v in vals.items():
                    if v and label in self._obs_tids:
                        obs_tids = self._obs_tids[label]
                        i = bisect.bisect_left(obs_tids, tid)
                        obs_tids.insert(i, tid)
                        self._obs_vals[label].insert(i, v[0])
                        self._obs_arrays.pop(label, None)
        else:
            if vals is not self._vals[pos] and vals != self._vals[pos]:
                for label, v in vals.items():
                    if len(v) > 1:
                        raise ValueError(f"trial {tid}: more than one value for {label!r}")
                self._vals[pos] = vals
                self._obs_stale = True  # re-sampled: rebuilt on the next read
            self._losses[pos] = loss
        self._loss_array = None
        if in_flight:
            self._in_flight[tid] = vals
        else:
            self._in_flight.pop(tid, None)
            self.finished.add(exact_key(vals))

    def replace_losses(self, losses: list[float]) -> None:
        """Every trial's loss at once, aligned with :meth:`tids`."""
        if len(losses) != len(self._tids):
            raise ValueError("one loss per trial held", (len(losses), len(self._tids)))
        self._losses = [float(x) for x in losses]
        self._loss_array = None

    def remove(self, tid: int) -> None:
        """Drop trial ``tid`` (failed, or cancelled before it ran); nothing if it is not held."""
        pos, held = self._find(tid)
        if not held:
            return
        vals = self._vals[pos]
        del self._tids[pos], self._losses[pos], self._vals[pos]
        self._in_flight.pop(tid, None)
        self._tid_array = self._loss_array = None
        if not self._obs_stale:
            for label, v in vals.items():
                if v and label in self._obs_tids:
                    obs_tids = self._obs_tids[label]
                    i = bisect.bisect_left(obs_tids, tid)
                    del obs_tids[i], self._obs_vals[label][i]
                    self._obs_arrays.pop(label, None)

    def tids(self) -> np.ndarray:
        """The trial ids, ascending (int64)."""
        if self._tid_array is None:
            self._tid_array = np.asarray(self._tids, dtype=np.int64)
        return self._tid_array

    def losses(self) -> np.ndarray:
        """The losses aligned with :meth:`tids` (float; infinite for a trial without one)."""
        if self._loss_array is None:
            self._loss_array = np.asarray(self._losses, dtype=float)
        return self._loss_array

    def in_flight(self) -> list[Vals]:
        """The values of the trials in flight."""
        return list(self._in_flight.values())

    def _rebuild_observations(self) -> None:
        for label in self.labels:
            self._obs_tids[label] = []
            self._obs_vals[label] = []
        for tid, vals in zip(self._tids, self._vals, strict=True):
            for label, v in vals.items():
                if v and label in self._obs_tids:
                    self._obs_tids[label].append(tid)
                    self._obs_vals[label].append(v[0])
        self._obs_arrays.clear()
        self._obs_stale = False

    def observations(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """The ids (int64) and values of the trials that have parameter ``label``, in id order, as
        ``miscs_to_idxs_vals`` gives them (the values through ``np.asarray`` of the list)."""
        if self._obs_stale:
            self._rebuild_observations()
        cached = self._obs_arrays.get(label)
        if cached is None:
            cached = (np.asarray(self._obs_tids[label], dtype=np.int64), np.asarray(self._obs_vals[label]))
            self._obs_arrays[label] = cached
        return cached
