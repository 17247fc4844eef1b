"""The records the store holds: searches, trials, workers, API tokens and uploaded datasets.

They are plain dataclasses, shared by every store backend, the workers and the service (which turns
them into its own response models). Times are UNIX epoch seconds (float, UTC). Every mapping held in
a record is JSON-serialisable.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any


class SearchStatus(enum.StrEnum):
    """A search's life: ``pending`` -> ``running`` -> one of the final states.

    - ``pending``: created, no trial claimed yet.
    - ``running``: at least one trial claimed, budget not used up.
    - ``completed``: every slot of the budget (``max_trials``) ended done, failed, pruned or cancelled,
      at least one of them ``done``.
    - ``cancelled``: cancelled by its owner; queued trials are cancelled, running ones are told to stop.
    - ``failed``: ``max_consecutive_failures`` trials failed in a row, a trial failed because of the
      search document itself, or the budget ended with no ``done`` trial; ``error`` says why.

    ``extend`` turns a completed (or failed) search back into ``running``.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_SEARCH_STATUSES


_FINAL_SEARCH_STATUSES = frozenset({SearchStatus.COMPLETED, SearchStatus.CANCELLED, SearchStatus.FAILED})
RUNNABLE_SEARCH_STATUSES = (SearchStatus.PENDING, SearchStatus.RUNNING)

DEFAULT_LEASE_SECONDS = 60.0
"""A claimed trial's lease when nobody says otherwise (the store's ``claim``, ``Settings.lease_seconds``)."""


class TrialState(enum.StrEnum):
    """A trial's life.

    ``running`` (claimed, holds a lease) -> ``done`` | ``failed`` | ``pruned`` | ``cancelled``, or back to
    ``queued`` when its lease expired (worker lost) or its worker handed it back, and then ``running``
    again under a new lease token. ``queued`` -> ``cancelled`` when its search is cancelled.
    ``done``, ``failed``, ``pruned`` and ``cancelled`` are final: a final trial never changes again.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    PRUNED = "pruned"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in _OPEN_TRIAL_STATES


_OPEN_TRIAL_STATES = frozenset({TrialState.QUEUED, TrialState.RUNNING})
REPORTABLE_TRIAL_STATES = (TrialState.DONE, TrialState.FAILED, TrialState.PRUNED)
"""The final states a worker's report may set (``cancelled`` is the store's own)."""


@dataclass
class TrialCounts:
    """How many trials of a search are in each state; ``total`` is the number of budget slots taken."""

    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    pruned: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.running + self.done + self.failed + self.pruned + self.cancelled

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.pruned + self.cancelled

    def to_dict(self) -> dict[str, int]:
        # the instance's fields are its __dict__: dataclasses.asdict deep-copies them one by one, ~10x
        # slower (a page of searches builds one per search; benchmarks/load.py)
        return {**self.__dict__, "total": self.total, "finished": self.finished}


@dataclass
class Search:
    """A search: its validated document, budget, objective and progress.

    ``seed`` is always set: the document's seed, or the one drawn at creation and recorded.
    ``best_value`` is in the metric's own units (an accuracy stays an accuracy); ``best_trial_id`` names
    the done trial with the best value for ``objective_mode``.
    """

    id: str
    name: str
    owner: str | None
    status: SearchStatus
    document: dict[str, Any]
    algorithm: str
    max_trials: int
    seed: int
    objective_metric: str
    objective_mode: str
    max_consecutive_failures: int
    max_retries: int
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    counts: TrialCounts = field(default_factory=TrialCounts)
    consecutive_failures: int = 0
    best_trial_id: str | None = None
    best_value: float | None = None
    error: str | None = None

    @property
    def slots_left(self) -> int:
        return max(0, self.max_trials - self.counts.total)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["counts"] = self.counts.to_dict()
        return out


@dataclass
class Trial:
    """One evaluated (or to-be-evaluated) configuration of a search.

    - ``number``: the budget slot, 0-based, unique within its search; also hyperopt's ``tid``.
    - ``config``: the sampled configuration (the document's shape, distributions replaced by values);
      ``None`` only between a slot being taken and its suggestion being stored.
    - ``vals``: hyperopt's flat ``{label: [value]}`` (``[]`` for inactive labels), used to rebuild history.
    - ``value``: the objective metric in its own units; ``loss``: what hyperopt minimises (``value`` for
      mode ``min``, ``-value`` for ``max``).
    - ``metrics``: final metrics; ``history``: one mapping per epoch (``{"epoch": 1, "loss": ..., ...}``).
    - ``lease_token`` / ``lease_expires_at``: the current claim; only its holder may heartbeat or report.
    - ``attempts``: how many times the trial was claimed; ``version`` grows on every write.
    """

    id: str
    search_id: str
    number: int
    state: TrialState
    config: dict[str, Any] | None
    vals: dict[str, list[Any]] | None
    seed: int
    created_at: float
    updated_at: float
    value: float | None = None
    loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    worker_id: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = str(self.state)
        return out


@dataclass
class TrialResult:
    """What a worker reports at the end of a trial.

    ``state`` is ``done``, ``failed`` or ``pruned``. For ``done`` the store reads the objective from
    ``metrics[search.objective_metric]``; a missing or non-finite value turns the report into ``failed``.
    ``info`` holds provenance (seed used, library versions, host, dataset hash, timings).
    ``search_error``: a ``failed`` trial failed because of the search document itself (its model cannot
    be built, its dataset loaded, its objective function imported): every trial would fail the same
    way, so the store fails the search at once with this error.
    """

    state: TrialState
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    search_error: bool = False

    @classmethod
    def done(cls, metrics: dict[str, Any], **kw: Any) -> TrialResult:
        return cls(state=TrialState.DONE, metrics=metrics, **kw)

    @classmethod
    def failed(cls, error: str, **kw: Any) -> TrialResult:
        return cls(state=TrialState.FAILED, error=error, **kw)


class HeartbeatAction(enum.StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass(frozen=True)
class HeartbeatReply:
    """The store's answer to a heartbeat.

    ``action`` is ``stop`` with ``reason``:
    - ``cancelled``: the search was cancelled; report nothing more, the trial is already ``cancelled``.
    - ``pruned``: the trial's latest epoch is worse than the median; stop and report ``pruned``.
    - ``lease_lost``: the lease expired and the trial was requeued, or the token is not the current one;
      drop the trial without reporting.
    ``lease_expires_at`` is the new expiry when the lease was extended.
    """

    action: HeartbeatAction
    reason: str | None = None
    lease_expires_at: float | None = None

    @property
    def should_stop(self) -> bool:
        return self.action == HeartbeatAction.STOP


@dataclass
class WorkerInfo:
    """A worker process as it registered itself; ``last_seen`` is refreshed by its heartbeats."""

    id: str
    host: str
    pid: int
    started_at: float
    last_seen: float
    gpus: list[str] = field(default_factory=list)
    current_trial_id: str | None = None
    status: str = "idle"
    info: dict[str, Any] = field(default_factory=dict)

    def is_alive(self, now: float, timeout: float) -> bool:
        return self.status != "stopped" and now - self.last_seen <= timeout

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TokenInfo:
    """An API token's public face. The secret itself is shown once at creation and stored hashed."""

    id: str
    name: str
    admin: bool
    created_at: float
    last_used_at: float | None = None
    revoked: bool = False
    code: bool = False
    """May submit code that workers run (a Hyperas script); admins always may: :attr:`may_submit_code`."""

    @property
    def may_submit_code(self) -> bool:
        """Whether this token may submit a search that runs its own code on ``--allow-code`` workers."""
        return self.admin or self.code

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetInfo:
    """An uploaded ``.npz`` dataset: metadata; the bytes live in the store as chunks."""

    id: str
    name: str
    owner: str | None
    size: int
    sha256: str
    created_at: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite_or_none(v: Any) -> float | None:
    """``v`` as a finite float, or ``None`` (missing, not a number, NaN or infinite)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def objective_loss(value: float, mode: str) -> float:
    """hyperopt minimises: the loss of a metric value under ``mode`` (``min`` or ``max``)."""
    return float(value) if mode == "min" else -float(value)


def is_better(a: float, b: float | None, mode: str) -> bool:
    """Whether metric value ``a`` beats ``b`` under ``mode``; anything beats ``None``."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a < b if mode == "min" else a > b
