"""The API's request and response models, apart from the store's records.

Responses are built from :mod:`hyperhive.models` records by the ``from_*`` constructors here, which
decide what a client may see: a trial's lease token and the hash of its reporting token never leave the
server. Request bodies are small models (``ExtendRequest``); a search is submitted as its raw YAML or
JSON document (see ``routes/searches.py``), validated by ``search_spaces``.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, create_model

from hyperhive.models import DatasetInfo, Search, SearchStatus, TokenInfo, Trial, TrialState, WorkerInfo
from hyperhive.service.flatten import scalar_metrics

T = TypeVar("T")

PRIVATE_TRIAL_INFO = ("reported_token",)
"""Keys of ``Trial.info`` that stay on the server."""


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, the ``total`` matching the filters, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


Counts = create_model(  # one field per TrialState: a new state cannot be left out of the API
    "Counts",
    __doc__="Trials of a search by state; ``total`` is the budget slots taken, ``finished`` the final ones.",
    **{str(s): (int, 0) for s in TrialState},  # type: ignore[call-overload]
    total=(int, 0),
    finished=(int, 0),
)


class TrialSummary(BaseModel):
    """A trial in brief: what a search's ``best`` holds (scalar metrics only: per-class scores, the
    confusion matrix and the history are on ``GET /api/trials/{id}``)."""

    id: str
    number: int
    state: TrialState
    value: float | None
    config: dict[str, Any] | None
    metrics: dict[str, float] = Field(description="the final metrics that are single numbers")

    @classmethod
    def from_trial(cls, t: Trial) -> TrialSummary:
        return cls.model_validate(trial_summary_dict(t))


class SearchPublic(BaseModel):
    """A search as lists show it."""

    id: str
    name: str
    owner: str | None
    status: SearchStatus
    algorithm: str
    max_trials: int
    seed: int
    objective_metric: str
    objective_mode: str
    counts: Counts  # type: ignore[valid-type]
    progress: float = Field(description="finished trials / max_trials, from 0 to 1")
    best_value: float | None
    best_trial_id: str | None
    error: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_search(cls, s: Search) -> SearchPublic:
        return cls.model_validate(search_public_dict(s))


class SearchDetail(SearchPublic):
    """One search in full: its validated document and its best trial so far."""

    document: dict[str, Any]
    best: TrialSummary | None
    notice: str | None = Field(
        None, description="why the search may not progress, e.g. a script and no --allow-code worker alive"
    )

    @classmethod
    def from_search_and_best(cls, s: Search, best: Trial | None, notice: str | None = None) -> SearchDetail:
        return cls.model_validate(search_detail_dict(s, best, notice))


class TrialPublic(BaseModel):
    """A trial as lists show it: its configuration, value and scalar metrics, no per-epoch history."""

    id: str
    search_id: str
    number: int
    state: TrialState
    value: float | None = Field(description="the objective metric, in its own units")
    loss: float | None = Field(
        description="what hyperopt minimises: value for a min objective, -value for a max one "
        "(read value; this is not the model's training loss, which is metrics.train_loss)"
    )
    config: dict[str, Any] | None
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="the sampled parameters by document label: a named choice's option name, (none) for "
        "a null option, a number for a distribution (service/sampled.py)",
    )
    metrics: dict[str, float] = Field(description="the final metrics that are single numbers")
    error: str | None
    worker_id: str | None
    attempts: int
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None = Field(description="seconds from start to finish, when finished")

    @classmethod
    def from_trial(cls, t: Trial, params: dict[str, Any] | None = None) -> TrialPublic:
        return cls.model_validate(trial_public_dict(t, params))


class TrialDetail(TrialPublic):
    """One trial in full: every metric (per-class scores and the confusion matrix included), the
    per-epoch ``history``, provenance ``info`` (seed, versions, host, dataset hash, timings) and the
    lease's expiry (never its token)."""

    metrics: dict[str, Any] = Field(description="every final metric")
    history: list[dict[str, Any]]
    seed: int
    info: dict[str, Any]
    lease_expires_at: float | None

    @classmethod
    def from_trial(cls, t: Trial, params: dict[str, Any] | None = None) -> TrialDetail:
        return cls.model_validate(trial_detail_dict(t, params))


# ------------------------------------------------------------------ the models' fields as plain data
# What the hot read routes send as JSON without building the models (building and checking them cost more
# than the store's reads; benchmarks/load.py); the models above are built from the same dicts, and
# tests/api/test_schemas_plain.py checks that each dict is what its model would send.


def trial_summary_dict(t: Trial) -> dict[str, Any]:
    """A :class:`TrialSummary`'s fields."""
    return {
        "id": t.id,
        "number": t.number,
        "state": str(t.state),
        "value": t.value,
        "config": t.config,
        "metrics": scalar_metrics(t.metrics),
    }


def search_public_dict(s: Search) -> dict[str, Any]:
    """A :class:`SearchPublic`'s fields."""
    counts = s.counts.to_dict()
    return {
        "id": s.id,
        "name": s.name,
        "owner": s.owner,
        "status": str(s.status),
        "algorithm": s.algorithm,
        "max_trials": s.max_trials,
        "seed": s.seed,
        "objective_metric": s.objective_metric,
        "objective_mode": s.objective_mode,
        "counts": counts,
        "progress": min(1.0, counts["finished"] / s.max_trials) if s.max_trials else 1.0,
        "best_value": s.best_value,
        "best_trial_id": s.best_trial_id,
        "error": s.error,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    }


def search_detail_dict(s: Search, best: Trial | None, notice: str | None = None) -> dict[str, Any]:
    """A :class:`SearchDetail`'s fields."""
    return {
        **search_public_dict(s),
        "document": s.document,
        "best": trial_summary_dict(best) if best is not None else None,
        "notice": notice,
    }


def _trial_fields(t: Trial) -> dict[str, Any]:
    duration = None
    if t.started_at is not None and t.finished_at is not None:
        duration = max(0.0, t.finished_at - t.started_at)
    return {
        "id": t.id,
        "search_id": t.search_id,
        "number": t.number,
        "state": str(t.state),
        "value": t.value,
        "loss": t.loss,
        "config": t.config,
        "error": t.error,
        "worker_id": t.worker_id,
        "attempts": t.attempts,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "duration": duration,
    }


def trial_public_dict(t: Trial, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A :class:`TrialPublic`'s fields."""
    return {**_trial_fields(t), "metrics": scalar_metrics(t.metrics), "params": params or {}}


def trial_detail_dict(t: Trial, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A :class:`TrialDetail`'s fields (never the trial's private info: :data:`PRIVATE_TRIAL_INFO`)."""
    return {
        **_trial_fields(t),
        "params": params or {},
        "metrics": t.metrics,
        "history": t.history,
        "seed": t.seed,
        "info": {k: v for k, v in t.info.items() if k not in PRIVATE_TRIAL_INFO},
        "lease_expires_at": t.lease_expires_at,
    }


def page_dict(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A :class:`Page`'s fields."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}


class WorkerPublic(BaseModel):
    """A worker process; ``state`` is ``alive``, ``stopped`` (it exited cleanly) or ``lost`` (unseen for
    ``worker_timeout_seconds``: killed, crashed or cut off)."""

    id: str
    host: str
    pid: int
    gpus: list[str]
    status: str
    state: Literal["alive", "stopped", "lost"]
    current_trial_id: str | None
    started_at: float
    last_seen: float
    seconds_since_seen: float

    @classmethod
    def from_worker(cls, w: WorkerInfo, now: float, timeout: float, show_trial: bool) -> WorkerPublic:
        return cls(
            id=w.id,
            host=w.host,
            pid=w.pid,
            gpus=[str(g) for g in w.gpus],
            status=w.status,
            state="stopped" if w.status == "stopped" else "alive" if w.is_alive(now, timeout) else "lost",
            current_trial_id=w.current_trial_id if show_trial else None,
            started_at=w.started_at,
            last_seen=w.last_seen,
            seconds_since_seen=max(0.0, now - w.last_seen),
        )


class DatasetPublic(BaseModel):
    """An uploaded dataset; use it in a search as ``dataset: {upload: <id>}``."""

    id: str
    name: str
    owner: str | None
    size: int
    sha256: str
    created_at: float
    meta: dict[str, Any] = Field(description="arrays, shapes, dtypes and class count found at upload")

    @classmethod
    def from_info(cls, d: DatasetInfo) -> DatasetPublic:
        return cls(
            id=d.id, name=d.name, owner=d.owner, size=d.size, sha256=d.sha256, created_at=d.created_at,
            meta=d.meta,
        )  # fmt: skip


class TokenPublic(BaseModel):
    """Who a token belongs to (``GET /api/me``)."""

    id: str
    name: str
    admin: bool

    @classmethod
    def from_token(cls, t: TokenInfo) -> TokenPublic:
        return cls(id=t.id, name=t.name, admin=t.admin)


class ExtendRequest(BaseModel):
    """``POST /api/searches/{id}/extend``: add ``n`` trials to the budget."""

    n: int = Field(ge=1, le=100_000, description="how many trials to add")


class Health(BaseModel):
    status: str
    version: str


class ErrorItem(BaseModel):
    """One validation error: ``loc`` as path parts starting with ``body`` (FastAPI's convention),
    ``path`` the same location as the document language writes it (``model.layers[3].rate``)."""

    loc: list[str | int]
    msg: str
    path: str | None = None
    type: str | None = None


class ValidationErrorResponse(BaseModel):
    detail: list[ErrorItem]


class ErrorResponse(BaseModel):
    detail: str
    request_id: str | None = None
