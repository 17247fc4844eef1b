"""Compact trial rows: what a reader of many trials at once (the dashboard) needs, without the heavy
fields (``config``, ``metrics``, ``history``, ``info``) that a full :class:`~hyperhive.models.Trial` carries.

See :meth:`hyperhive.store.base.Store.trial_rows` for the contract.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hyperhive.models import Trial, TrialState


class TrialRow(NamedTuple):
    """One trial, light: ``epochs`` is the length of its per-epoch history (not the history itself)."""

    id: str
    number: int
    state: TrialState
    value: float | None
    vals: dict[str, list[Any]] | None
    epochs: int
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    version: int

    @classmethod
    def of(cls, t: Trial) -> TrialRow:
        return cls(
            t.id,
            t.number,
            t.state,
            t.value,
            t.vals,
            len(t.history),
            t.started_at,
            t.finished_at,
            t.worker_id,
            t.version,
        )


class TrialHead(NamedTuple):
    """One trial, lighter still: no parameter values, epoch count or worker (see
    :meth:`hyperhive.store.base.Store.trial_heads`)."""

    id: str
    number: int
    state: TrialState
    value: float | None
    started_at: float | None
    finished_at: float | None
    version: int

    @classmethod
    def of(cls, r: TrialRow) -> TrialHead:
        return cls(r.id, r.number, r.state, r.value, r.started_at, r.finished_at, r.version)
