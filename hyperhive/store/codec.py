"""Turning store records into plain mappings and back (rows, documents, export bundles)."""

from __future__ import annotations

import json
from typing import Any

from hyperhive.models import DatasetInfo, Search, SearchStatus, Trial, TrialCounts, TrialState

_COUNT_FIELDS = tuple(str(s) for s in TrialState)


def search_from_dict(d: dict[str, Any]) -> Search:
    """A :class:`Search` from ``Search.to_dict()`` output (extra keys ignored)."""
    counts = d.get("counts") or {}
    return Search(
        id=d["id"],
        name=d["name"],
        owner=d.get("owner"),
        status=SearchStatus(d["status"]),
        document=d["document"],
        algorithm=d["algorithm"],
        max_trials=int(d["max_trials"]),
        seed=int(d["seed"]),
        objective_metric=d["objective_metric"],
        objective_mode=d["objective_mode"],
        max_consecutive_failures=int(d["max_consecutive_failures"]),
        max_retries=int(d["max_retries"]),
        created_at=float(d["created_at"]),
        updated_at=float(d["updated_at"]),
        started_at=d.get("started_at"),
        finished_at=d.get("finished_at"),
        counts=TrialCounts(**{k: int(counts.get(k, 0)) for k in _COUNT_FIELDS}),
        consecutive_failures=int(d.get("consecutive_failures", 0)),
        best_trial_id=d.get("best_trial_id"),
        best_value=d.get("best_value"),
        error=d.get("error"),
    )


def trial_from_dict(d: dict[str, Any]) -> Trial:
    """A :class:`Trial` from ``Trial.to_dict()`` output (extra keys ignored)."""
    return Trial(
        id=d["id"],
        search_id=d["search_id"],
        number=int(d["number"]),
        state=TrialState(d["state"]),
        config=d.get("config"),
        vals=d.get("vals"),
        seed=int(d["seed"]),
        created_at=float(d["created_at"]),
        updated_at=float(d["updated_at"]),
        value=d.get("value"),
        loss=d.get("loss"),
        metrics=d.get("metrics") or {},
        history=d.get("history") or [],
        error=d.get("error"),
        worker_id=d.get("worker_id"),
        lease_token=d.get("lease_token"),
        lease_expires_at=d.get("lease_expires_at"),
        attempts=int(d.get("attempts", 0)),
        started_at=d.get("started_at"),
        finished_at=d.get("finished_at"),
        info=d.get("info") or {},
        version=int(d.get("version", 0)),
    )


def dataset_from_dict(d: dict[str, Any]) -> DatasetInfo:
    """A :class:`DatasetInfo` from a stored row or document (``meta`` as stored JSON text)."""
    return DatasetInfo(
        id=d["id"],
        name=d["name"],
        owner=d.get("owner"),
        size=int(d["size"]),
        sha256=d["sha256"],
        created_at=float(d["created_at"]),
        meta=json.loads(d["meta"]),
    )
