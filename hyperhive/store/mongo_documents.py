"""How the MongoDB store lays out its collections: the documents a search and a trial are stored as,
the field names and state strings the queries use, and the indexes.

Counters on the search document
    ``counts.<state>``, ``unfinished`` (= ``max_trials`` minus finished trials), ``consecutive_failures``,
    ``best_value``/``best_trial_id`` and the budget fields ``slots_left``/``slots_taken`` live on the
    search document, so ``get_search`` is one read and a claim one conditional update, whatever the
    number of trials (:mod:`hyperhive.store.mongo_protocol` keeps them equal to the trials).

Indexes (:data:`INDEXES`)
    Created idempotently at startup; they keep every hot query an index lookup at 100,000 trials.
    trials: ``(search_id, number)`` unique (slot numbers; listings by number; history versions),
    ``(state, lease_expires_at)`` (the lease sweep), ``(state, updated_at, number)`` (oldest queued
    trial), ``(search_id, state)`` (counts and listings by state), ``(search_id, value, number)``,
    ``(search_id, finished_at)`` and ``(search_id, created_at)`` (sorted listings; ``best_trial`` reads
    ``best_trial_id`` from the search), ``pending.at`` (op replay), ``(search_id, seq)`` and
    ``(search_id, pending.at)`` (the change feed: trials written since a number, trials being written).
    searches: ``(status, counts.running, last_claim_at, created_at)`` (the fair claim), ``created_at``,
    ``pending_slots.at``. tokens: ``hash`` unique. dataset_chunks: ``(dataset_id, seq)`` unique.
    workers: ``last_seen``.
    (mongomock's ``explain`` says nothing about plans, so no benchmark was possible here; on a real
    server, check a query's plan with ``db.trials.find(...).explain()``.)

Free-form mappings (``document``, ``config``, ``vals``, ``metrics``, ``history``, ``info``, dataset
``meta``, worker records) are stored as JSON strings: hyperopt labels such as ``model.layers[0].units``
contain dots, which MongoDB field names do not tolerate everywhere, and the round trip is then exact.
``history`` is an array of such strings, one per epoch, so a heartbeat appends its new epochs with one
``$push`` (``$position``/``$slice``, see "History" in :mod:`hyperhive.store.base`) instead of rewriting
the list; a trial written as one string by an older version is converted on its next append.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from hyperhive.models import RUNNABLE_SEARCH_STATUSES, Search, SearchStatus, Trial, TrialCounts, TrialState
from hyperhive.store.base import runs_code
from hyperhive.store.codec import search_from_dict, trial_from_dict
from hyperhive.store.rules import Counters

Doc = dict[str, Any]

QUEUED, RUNNING, CANCELLED = str(TrialState.QUEUED), str(TrialState.RUNNING), str(TrialState.CANCELLED)
RUNNABLE = [str(s) for s in RUNNABLE_SEARCH_STATUSES]
FINAL_SEARCH = [str(s) for s in SearchStatus if s.is_final]
REOPENABLE = [str(SearchStatus.COMPLETED), str(SearchStatus.FAILED)]
OPEN = [QUEUED, RUNNING]
COUNTS = tuple(str(s) for s in TrialState)
FAIR = [("counts.running", ASCENDING), ("last_claim_at", ASCENDING), ("created_at", ASCENDING)]
SEARCH_FIELDS = {"ops": 0, "pending_slots": 0}
TRIAL_FIELDS = {"pending": 0}
JSON_TRIAL_FIELDS = ("config", "vals", "metrics", "history", "info")
ROW_FIELDS = ("number", "state", "value", "vals", "started_at", "finished_at", "worker_id", "version", "seq")
AFTER = ReturnDocument.AFTER
INDEXES: dict[str, list[tuple[str, list[tuple[str, int]], bool]]] = {
    # collection: [(name, keys, unique)]; see the module docstring for what each one serves
    "trials": [
        ("search_number", [("search_id", 1), ("number", 1)], True),
        ("state_lease", [("state", 1), ("lease_expires_at", 1)], False),
        ("state_updated", [("state", 1), ("updated_at", 1), ("number", 1)], False),
        ("search_state", [("search_id", 1), ("state", 1)], False),
        ("search_value", [("search_id", 1), ("value", 1), ("number", 1)], False),
        ("search_finished", [("search_id", 1), ("finished_at", 1)], False),
        ("search_created", [("search_id", 1), ("created_at", 1)], False),
        ("pending_ops", [("pending.at", 1)], False),
        ("search_seq", [("search_id", 1), ("seq", 1)], False),
        ("search_pending", [("search_id", 1), ("pending.at", 1)], False),
    ],
    "searches": [
        ("status_fair", [("status", 1), *FAIR], False),
        ("created", [("created_at", -1)], False),
        ("pending_slots", [("pending_slots.at", 1)], False),
        ("owner_status", [("owner", 1), ("status", 1)], False),
    ],
    "tokens": [("hash", [("hash", 1)], True)],
    "datasets": [("owner", [("owner", 1)], False)],
    "dataset_chunks": [("seq", [("dataset_id", 1), ("seq", 1)], True)],
    "workers": [("last_seen", [("last_seen", -1)], False)],
}


def doc_counters(doc: Doc) -> Counters:
    """The counters of a search document."""
    counts = TrialCounts(**{k: int((doc.get("counts") or {}).get(k, 0)) for k in COUNTS})
    return Counters(
        counts, int(doc.get("consecutive_failures") or 0), doc.get("best_trial_id"), doc.get("best_value")
    )


def to_json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def from_json(s: str | None) -> Any:
    return None if s is None else json.loads(s)


def history_to_doc(history: list[dict[str, Any]] | None) -> list[str]:
    """A history as stored: one JSON string per epoch."""
    return [to_json(e) for e in history or []]


def history_from_doc(stored: Any) -> list[dict[str, Any]]:
    """A stored history read back (an array of per-epoch strings, or one string from older versions)."""
    if isinstance(stored, str):
        return list(json.loads(stored))
    return [json.loads(e) for e in stored or []]


def cleared_lease(now: float, **fields: Any) -> Doc:
    """``$set`` fields of a trial leaving ``running``: no lease any more."""
    return {"lease_token": None, "lease_expires_at": None, "updated_at": now, **fields}


def search_doc_of(s: Search, *, seq: int = 0) -> Doc:
    d = s.to_dict()
    document = to_json(s.document)
    d.update(
        _id=d.pop("id"),
        document=document,
        document_bytes=len(document),
        counts={k: d["counts"][k] for k in COUNTS},
        slots_taken=s.counts.total,
        slots_left=s.max_trials - s.counts.total,
        unfinished=s.max_trials - s.counts.finished,
        last_claim_at=0.0,
        pending_slots=[],
        ops=[],
        seq=seq,
        code=runs_code(s.document),
    )
    return d


def search_of(doc: Doc) -> Search:
    return search_from_dict({**doc, "id": doc["_id"], "document": json.loads(doc["document"])})


def trial_doc_of(t: Trial, *, seq: int = 0) -> Doc:
    d = t.to_dict()
    d["_id"] = d.pop("id")
    for k in JSON_TRIAL_FIELDS:
        d[k] = None if d[k] is None else to_json(d[k])
    d["history"] = history_to_doc(t.history)
    d["pending"] = []
    d["seq"] = seq
    return d


def trial_of(doc: Doc) -> Trial:
    fields = {k: from_json(doc.get(k)) for k in JSON_TRIAL_FIELDS if k != "history"}
    return trial_from_dict(
        {**doc, "id": doc["_id"], **fields, "history": history_from_doc(doc.get("history"))}
    )
