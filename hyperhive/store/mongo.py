"""The distributed store: MongoDB (pymongo >= 4), shared by the API server and workers on many machines.

:class:`MongoStore` holds the contract methods (:mod:`hyperhive.store.base`). What they stand on lives in
three modules beside this one:

- :mod:`hyperhive.store.mongo_connection`: URL parsing, the client, retries through connection loss
  and elections (:func:`parse_mongo_url`, the write concern and timeouts);
- :mod:`hyperhive.store.mongo_protocol`: the two-phase operations that keep a search's counters equal
  to its trials without transactions, claiming a new slot, the change feed's numbering of trial
  writes, and the repair sweep;
- :mod:`hyperhive.store.mongo_documents`: the documents, field names and indexes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hyperhive.errors import Conflict, LeaseLost, NotFound, StoreUnavailable
from hyperhive.models import DatasetInfo, Search, SearchStatus, TokenInfo, Trial, TrialState, WorkerInfo
from hyperhive.policy import InFlightRule, Policy
from hyperhive.quotas import TRIAL_BYTES_ESTIMATE, Usage
from hyperhive.store import rules
from hyperhive.store.base import (
    TRIAL_SORT_FIELDS,
    Outcome,
    Store,
    epoch_gap,
    extend_refused,
    new_lease_token,
    trial_limit,
)
from hyperhive.store.codec import dataset_from_dict
from hyperhive.store.mongo_connection import parse_mongo_url
from hyperhive.store.mongo_documents import (
    AFTER,
    FINAL_SEARCH,
    INDEXES,
    QUEUED,
    REOPENABLE,
    ROW_FIELDS,
    RUNNABLE,
    RUNNING,
    SEARCH_FIELDS,
    TRIAL_FIELDS,
    Doc,
    cleared_lease,
    from_json,
    history_from_doc,
    history_to_doc,
    search_doc_of,
    search_of,
    to_json,
    trial_doc_of,
    trial_of,
)
from hyperhive.store.mongo_protocol import CAS_ATTEMPTS, MongoProtocol
from hyperhive.store.rows import TrialRow
from hyperhive.store.urls import redact_url

__all__ = ["MongoStore", "parse_mongo_url", "redact_url"]

CHUNK_BYTES = 4 << 20
"""Dataset bytes are stored in documents of at most this size (MongoDB's limit is 16 MiB)."""
_NULLABLE_SORTS = ("value", "finished_at")


class MongoStore(MongoProtocol, Store):
    """The MongoDB backend (see the module docstring).

    ``url``: a ``mongodb://`` or ``mongodb+srv://`` URL; ``database`` overrides the URL's path (default
    ``hyperhive``); ``client``: an existing client to use instead of connecting (``mongomock.MongoClient()``
    in tests; :meth:`close` leaves it open). ``retry_seconds``: how long one call keeps retrying through
    connection loss before :class:`StoreUnavailable`. ``repair_grace``/``repair_interval``: how old an
    interrupted two-step change must be before a sweep finishes it, and how often this object runs that
    sweep (from :meth:`requeue_expired`, i.e. on every claim).

    Construction validates the URL (:class:`BadStoreURL`) and creates the indexes, failing fast with
    :class:`StoreUnavailable` (hosts and timeout named) when the server cannot be reached.
    """

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        client: Any = None,
        retry_seconds: float = 30.0,
        repair_grace: float = 10.0,
        repair_interval: float = 5.0,
        policy: Policy | None = None,
    ) -> None:
        super().__init__(policy)
        self._open(url, database=database, client=client, retry_seconds=retry_seconds)
        self.repair_grace = repair_grace
        self.repair_interval = repair_interval
        self._last_repair = float("-inf")
        self._held = {}
        self._searches = self.db["searches"]
        self._trials = self.db["trials"]
        self._workers = self.db["workers"]
        self._tokens = self.db["tokens"]
        self._datasets = self.db["datasets"]
        self._chunks = self.db["dataset_chunks"]
        self._quotas = self.db["quotas"]
        self._run("connect and create indexes", self.ensure_indexes, retry=False)

    def ensure_indexes(self) -> None:
        """Create every index (idempotent: existing ones are left as they are)."""
        for coll, indexes in INDEXES.items():
            for name, keys, unique in indexes:
                self.db[coll].create_index(keys, name=name, unique=unique)

    # ------------------------------------------------------------------ searches
    def _insert_search(self, search: Search) -> None:
        self._call("insert search", self._searches.insert_one, search_doc_of(search))

    def get_search(self, search_id: str) -> Search:
        return search_of(self._find_search(search_id))

    @staticmethod
    def _search_filter(status: Any, name: str | None, owner: str | None) -> Doc:
        flt: Doc = {}
        if status is not None:
            flt["status"] = str(SearchStatus(status))
        if name is not None:
            flt["name"] = name
        if owner is not None:
            flt["owner"] = owner
        return flt

    def list_searches(
        self,
        *,
        status: SearchStatus | str | None = None,
        name: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Search]:
        flt = self._search_filter(status, name, owner)
        order = [("created_at", DESCENDING), ("_id", ASCENDING)]
        docs = self._find(
            "list searches", self._searches, flt, SEARCH_FIELDS, sort=order, skip=offset, limit=limit
        )
        return [search_of(d) for d in docs]

    def count_searches(
        self, *, status: SearchStatus | str | None = None, name: str | None = None, owner: str | None = None
    ) -> int:
        flt = self._search_filter(status, name, owner)
        return int(self._call("count searches", self._searches.count_documents, flt))

    def cancel_search(self, search_id: str) -> Search:
        now = self.clock()
        self._call(
            "cancel search",
            self._searches.update_one,
            {"_id": search_id, "status": {"$in": RUNNABLE}},
            {"$set": {"status": str(SearchStatus.CANCELLED), "finished_at": now, "updated_at": now}},
        )
        search = self.get_search(search_id)
        if search.status.is_final and (search.counts.queued or search.counts.running):
            self._cancel_open_trials(search_id)
            search = self.get_search(search_id)
        return search

    def extend_search(self, search_id: str, n: int, *, limit: int | None = None) -> Search:
        """One conditional update: the filter holds the status and ``max_trials <= limit - n``, so
        concurrent extends can never pass ``limit`` together."""
        if n < 1:
            raise ValueError("extend needs n >= 1")
        limit = trial_limit(limit)
        inc = {"max_trials": n, "slots_left": n, "unfinished": n}
        for _ in range(CAS_ATTEMPTS):
            now = self.clock()
            reopen = {
                "status": str(SearchStatus.RUNNING),
                "consecutive_failures": 0,
                "finished_at": None,
                "error": None,
            }
            for statuses, sets in ((REOPENABLE, reopen), (RUNNABLE, {})):
                res = self._call(
                    "extend search",
                    self._searches.update_one,
                    {"_id": search_id, "status": {"$in": statuses}, "max_trials": {"$lte": limit - n}},
                    {"$inc": inc, "$set": {**sets, "updated_at": now}},
                )
                if res.matched_count:
                    return self.get_search(search_id)
            current = self.get_search(search_id)
            if current.status == SearchStatus.CANCELLED:
                raise Conflict(f"search {search_id} is cancelled and cannot be extended")
            if current.max_trials + n > limit:
                raise extend_refused(search_id, current.max_trials, n, limit)
        raise StoreUnavailable(f"search {search_id} kept changing while being extended")

    def delete_search(self, search_id: str) -> None:
        res = self._call("delete search", self._searches.delete_one, {"_id": search_id})
        if res.deleted_count == 0:
            raise NotFound("search", search_id)
        self._call("delete trials", self._trials.delete_many, {"search_id": search_id})
        self._forget(search_id)

    # ------------------------------------------------------------------ claims
    def _claim_queued(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        flt: Doc = {"state": QUEUED}
        if search_id:
            flt["search_id"] = search_id
        if not allow_code:
            code_ids = self._call(
                "find code searches",
                self._searches.distinct,
                "_id",
                {"code": True, "status": {"$in": RUNNABLE}},
            )
            if code_ids:
                flt["search_id"] = {"$nin": code_ids, **({"$eq": search_id} if search_id else {})}
        for _ in range(CAS_ATTEMPTS):
            if self._call("find queued trial", self._trials.find_one, flt, {"_id": 1}) is None:
                return None  # a cheap read first: most claims find no queued trial
            token = new_lease_token()
            op = self._op(now, {"counts.queued": -1, "counts.running": 1}, set_={"last_claim_at": now})
            sets = {
                "state": RUNNING,
                "worker_id": worker_id,
                "lease_token": token,
                "lease_expires_at": now + lease_seconds,
                "started_at": now,
                "updated_at": now,
            }
            doc = self._call(
                "claim queued trial",
                self._trials.find_one_and_update,
                flt,
                {"$set": sets, "$inc": {"attempts": 1, "version": 1}, "$push": {"pending": op}},
                projection=TRIAL_FIELDS,
                sort=[("updated_at", ASCENDING), ("number", ASCENDING)],
                return_document=AFTER,
            )
            if doc is None:
                continue  # taken by another claimer between the read and the update
            self._apply_op(doc["search_id"], doc["_id"], op)
            search = self._call(
                "read search", self._searches.find_one, {"_id": doc["search_id"]}, {"status": 1}
            )
            if search is None:  # an orphan of a deleted search
                self._call("delete orphan trial", self._trials.delete_one, {"_id": doc["_id"]})
            elif search["status"] not in RUNNABLE:  # a cancel or failure still sweeping its trials
                self._cancel_trial(doc["_id"], {"lease_token": token}, RUNNING)
            else:
                return trial_of(doc)
        return None

    def _set_suggestion(
        self,
        trial_id: str,
        lease_token: str,
        vals: dict[str, list[Any]],
        config: dict[str, Any],
        *,
        clash: InFlightRule | None = None,
    ) -> Trial | None:
        """The suggestion, stamped in the same write when this process inserted the trial (the
        marker it holds is still there), else held by a marker of its own until stamped. ``clash`` is
        checked against the trials in flight just before the write (MongoDB has no transaction here:
        a twin that starts in between still passes)."""
        if clash is not None and self._clashes(trial_id, vals, clash):
            return None
        now = self.clock()
        flt: Doc = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        sets = {"vals": to_json(vals), "config": to_json(config), "updated_at": now}
        held = self._held.pop(trial_id, None)
        if held is not None:
            marker_id, seq = held
            doc = self._call(
                "save suggestion",
                self._trials.find_one_and_update,
                {**flt, "pending.id": marker_id},
                {
                    "$set": sets,
                    "$inc": {"version": 1},
                    "$max": {"seq": seq},
                    "$pull": {"pending": {"id": marker_id}},
                },
                projection=TRIAL_FIELDS,
                return_document=AFTER,
            )
            if doc is not None:
                return trial_of(doc)
        marker = self._marker(now)
        doc = self._call(
            "save suggestion",
            self._trials.find_one_and_update,
            flt,
            {"$set": sets, "$inc": {"version": 1}, "$push": {"pending": marker}},
            projection=TRIAL_FIELDS,
            return_document=AFTER,
        )
        if doc is None:
            self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is no longer held by this lease")
        self._apply_op(doc["search_id"], trial_id, marker)
        return trial_of(doc)

    def _clashes(self, trial_id: str, vals: dict[str, list[Any]], clash: InFlightRule) -> bool:
        me = self._call("read trial", self._trials.find_one, {"_id": trial_id}, {"search_id": 1})
        if me is None:
            return False
        flt = {"search_id": me["search_id"], "state": {"$in": [RUNNING, QUEUED]}, "_id": {"$ne": trial_id}}
        others = [
            from_json(d["vals"])
            for d in self._find("read trials in flight", self._trials, flt, {"vals": 1})
            if d.get("vals")
        ]
        return bool(others) and clash(vals, others)

    def _touch_lease(
        self,
        trial_id: str,
        lease_token: str,
        lease_seconds: float,
        history: list[dict[str, Any]] | None,
        now: float,
        *,
        epochs: tuple[int, list[dict[str, Any]]] | None = None,
    ) -> Trial:
        sets: Doc = {"lease_expires_at": now + lease_seconds, "updated_at": now}
        if history is not None:
            sets["history"] = history_to_doc(history)
        flt: Doc = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        marker = self._marker(now)
        update: Doc = {"$set": sets, "$inc": {"version": 1}, "$push": {"pending": marker}}
        if epochs is not None:
            k, new = epochs
            # history[:k] + new, and only when history has k entries already (no hole, no duplicate)
            flt.update({"history": {"$type": "array"}} if k == 0 else {f"history.{k - 1}": {"$exists": True}})
            each = {"$each": history_to_doc(new), "$position": k, "$slice": k + len(new)}
            update["$push"]["history"] = each
        for _ in range(2):
            doc = self._call(
                "heartbeat",
                self._trials.find_one_and_update,
                flt,
                update,
                projection=TRIAL_FIELDS,
                return_document=AFTER,
            )
            if doc is not None or epochs is None:
                break
            current = self._find_trial(trial_id)
            if current["state"] != RUNNING or current.get("lease_token") != lease_token:
                break
            stored = current.get("history")
            if not isinstance(stored, str):
                raise epoch_gap(trial_id, epochs[0], len(stored or []))
            self._call(  # a history stored whole by an older version: one array of epochs from now on
                "convert history",
                self._trials.update_one,
                {"_id": trial_id, "history": stored},
                {"$set": {"history": history_to_doc(history_from_doc(stored))}},
            )
        if doc is None:
            current = self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current['state']})")
        search = self._call(  # the search's status, and the change number of this heartbeat
            "read search",
            self._searches.find_one_and_update,
            {"_id": doc["search_id"]},
            {"$inc": {"seq": 1}},
            projection={"status": 1, "seq": 1},
            return_document=AFTER,
        )
        self._stamp(trial_id, [marker["id"]], None if search is None else int(search["seq"]))
        if search is None or search["status"] in FINAL_SEARCH:
            # the search was cancelled or failed while this trial was being claimed: cancel it now
            self._cancel_trial(trial_id, {"lease_token": lease_token}, RUNNING)
            raise LeaseLost(f"trial {trial_id}'s search is no longer running")
        return trial_of(doc)

    def _finish_trial(self, trial_id: str, lease_token: str, outcome: Outcome, now: float) -> Trial:
        state, value, error, history = outcome.state, outcome.value, outcome.error, outcome.history
        current = trial_of(self._find_trial(trial_id))
        reported = outcome.info.get("reported_token")
        if current.state.is_final and current.info.get("reported_token") == reported:
            return current
        if current.state != TrialState.RUNNING or current.lease_token != lease_token:
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current.state})")
        sets = cleared_lease(
            now,
            state=str(state),
            value=value,
            loss=outcome.loss,
            metrics=to_json(outcome.metrics),
            error=error,
            info=to_json({**current.info, **outcome.info}),
            finished_at=now,
        )
        if history is not None:
            sets["history"] = history_to_doc(history)
        flt = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        fatal = rules.search_error_message(current.number, error) if outcome.fails_search else None
        op = self._finish_op(state, value, error, now, search_error=fatal)
        held = self._held.pop(trial_id, None)  # a suggestion that failed: this report stamps the trial
        doc = self._move("report", flt, sets, op, also=None if held is None else held[0])
        if doc is None:  # lost a race, or our own write got through before the connection broke
            again = trial_of(self._find_trial(trial_id))
            if again.state.is_final and again.info.get("reported_token") == reported:
                return again
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {again.state})")
        return trial_of(doc)

    def release(self, trial_id: str, lease_token: str) -> Trial:
        now = self.clock()
        op = self._op(now, {"counts.running": -1, "counts.queued": 1})
        flt = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        sets = cleared_lease(now, state=QUEUED, worker_id=None)
        doc = self._move("release", flt, sets, op, inc={"attempts": -1})
        if doc is None:
            current = self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current['state']})")
        if doc["attempts"] < 0:  # only a trial imported as running could get here
            self._call("fix attempts", self._trials.update_one, {"_id": trial_id}, {"$set": {"attempts": 0}})
            doc["attempts"] = 0
        return trial_of(doc)

    def requeue_expired(self) -> int:
        now = self.clock()
        expired = self._find(
            "find expired leases",
            self._trials,
            {"state": RUNNING, "lease_expires_at": {"$lt": now}},
            {"search_id": 1, "attempts": 1, "lease_token": 1, "worker_id": 1},
            sort=[("lease_expires_at", ASCENDING), ("number", ASCENDING)],
        )
        changed = 0
        searches: dict[str, Doc | None] = {}
        for t in expired:
            sid = t["search_id"]
            if sid not in searches:
                fields = {"status": 1, "max_retries": 1}
                searches[sid] = self._call("read search", self._searches.find_one, {"_id": sid}, fields)
            changed += self._requeue_one(t, searches[sid], now)
        if time.monotonic() - self._last_repair >= self.repair_interval:
            self._last_repair = time.monotonic()
            changed += self.repair()
        return changed

    # ------------------------------------------------------------------ reading trials
    def get_trial(self, trial_id: str) -> Trial:
        return trial_of(self._find_trial(trial_id))

    def list_trials(
        self,
        search_id: str,
        *,
        state: TrialState | str | None = None,
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trial]:
        if sort not in TRIAL_SORT_FIELDS:
            raise ValueError(f"sort must be one of {', '.join(TRIAL_SORT_FIELDS)}")
        flt: Doc = {"search_id": search_id}
        if state is not None:
            flt["state"] = str(TrialState(state))
        order = [(sort, DESCENDING if descending else ASCENDING), ("number", ASCENDING)]
        if limit is not None and limit <= 0:
            return []
        if sort not in _NULLABLE_SORTS:
            docs = self._find(
                "list trials", self._trials, flt, TRIAL_FIELDS, sort=order, skip=offset, limit=limit
            )
            return [trial_of(d) for d in docs]
        # trials without a value (or finish time) come last, in either direction
        has = {**flt, sort: {"$ne": None}}
        docs = self._find(
            "list trials", self._trials, has, TRIAL_FIELDS, sort=order, skip=offset, limit=limit
        )
        if limit is not None and len(docs) >= limit:
            return [trial_of(d) for d in docs]
        skip = (
            0
            if docs or not offset
            else max(0, offset - int(self._call("count trials", self._trials.count_documents, has)))
        )
        rest = None if limit is None else limit - len(docs)
        nulls = self._find(
            "list trials",
            self._trials,
            {**flt, sort: None},
            TRIAL_FIELDS,
            sort=[("number", ASCENDING)],
            skip=skip,
            limit=rest,
        )
        return [trial_of(d) for d in (*docs, *nulls)]

    def count_trials(self, search_id: str, *, state: TrialState | str | None = None) -> int:
        flt: Doc = {"search_id": search_id}
        if state is not None:
            flt["state"] = str(TrialState(state))
        return int(self._call("count trials", self._trials.count_documents, flt))

    def get_trials(self, trial_ids: Iterable[str]) -> list[Trial]:
        ids = list(trial_ids)
        out: list[Trial] = []
        for i in range(0, len(ids), 1000):
            docs = self._find("read trials", self._trials, {"_id": {"$in": ids[i : i + 1000]}}, TRIAL_FIELDS)
            out.extend(trial_of(d) for d in docs)
        return out

    def trial_versions(self, search_id: str) -> dict[str, tuple[int, TrialState]]:
        docs = self._find(
            "read trial versions", self._trials, {"search_id": search_id}, {"version": 1, "state": 1}
        )
        return {d["_id"]: (int(d["version"]), TrialState(d["state"])) for d in docs}

    def _read_feed(
        self, search_id: str, cursor: Any, read: Callable[[Doc], list[Doc]]
    ) -> tuple[list[Doc], Any]:
        """The documents ``read`` returns for the trials written since ``cursor`` (``None``: all), and
        the next cursor (see "Change feed" in :mod:`~hyperhive.store.mongo_protocol`): ``(horizon,
        {trial_id: seq})``, every write numbered up to ``horizon`` having been read, and the trials
        returned with a higher number (not returned again while their number stays the same).

        First the search's counter, then one query for the trials numbered above the cursor's horizon
        or holding an op (a write whose number is not stamped yet)."""
        since, seen = (-1, {}) if cursor is None else cursor
        s = self._call("read change number", self._searches.find_one, {"_id": search_id}, {"seq": 1})
        if s is None:
            return [], cursor
        horizon = int(s.get("seq") or 0)
        flt: Doc = {"search_id": search_id}
        if cursor is not None:
            flt["$or"] = [{"seq": {"$gt": since}}, {"pending.at": {"$gte": float("-inf")}}]
        out: list[Doc] = []
        docs = read(flt)
        for d in docs:
            seq = int(d.get("seq") or 0)
            if d.get("pending"):
                horizon = min(horizon, seq)
            if cursor is None or (seq > since and seen.get(d["_id"]) != seq):
                out.append(d)
        horizon = max(since, horizon)
        above = {d["_id"]: int(d.get("seq") or 0) for d in docs if int(d.get("seq") or 0) > horizon}
        return out, (horizon, above)

    def trials_changed_since(self, search_id: str, cursor: Any) -> tuple[list[Trial], Any]:
        """Read through the change feed: index range reads on ``(search_id, seq)`` and ``(search_id,
        pending.at)``, whatever the search's size."""

        def read(flt: Doc) -> list[Doc]:
            return self._find("read changed trials", self._trials, flt, sort=[("seq", 1)])

        docs, cursor = self._read_feed(search_id, cursor, read)
        return [trial_of(d) for d in docs], cursor

    def trial_rows(self, search_id: str, cursor: Any = None) -> tuple[list[TrialRow], Any]:
        """The change feed (as :meth:`trials_changed_since`), projected to the row's fields by an
        aggregation that counts the history server-side."""
        project: Doc = {name: 1 for name in (*ROW_FIELDS, "pending")}
        project["epochs"] = {"$cond": [{"$isArray": "$history"}, {"$size": "$history"}, -1]}

        def read(flt: Doc) -> list[Doc]:
            pipeline = [{"$match": flt}, {"$sort": {"seq": 1}}, {"$project": project}]
            return self._call("read trial rows", lambda: list(self._trials.aggregate(pipeline)))

        docs, cursor = self._read_feed(search_id, cursor, read)
        out: list[TrialRow] = []
        for d in docs:
            epochs = d["epochs"]
            if epochs < 0:  # a history stored whole by an older version (one string), or none
                one = self._find_trial(d["_id"]).get("history")
                epochs = len(history_from_doc(one))
            out.append(
                TrialRow(
                    d["_id"],
                    d["number"],
                    TrialState(d["state"]),
                    d.get("value"),
                    from_json(d.get("vals")),
                    epochs,
                    d.get("started_at"),
                    d.get("finished_at"),
                    d.get("worker_id"),
                    int(d["version"]),
                )
            )
        return out, cursor

    # ------------------------------------------------------------------ workers
    def register_worker(self, worker: WorkerInfo) -> None:
        doc = {
            "_id": worker.id,
            "last_seen": worker.last_seen,
            "status": worker.status,
            "current_trial_id": worker.current_trial_id,
            "data": to_json(worker.to_dict()),
        }
        self._call("register worker", self._workers.replace_one, {"_id": worker.id}, doc, upsert=True)

    def touch_worker(self, worker_id: str, *, status: str, current_trial_id: str | None) -> None:
        sets = {"last_seen": self.clock(), "status": status, "current_trial_id": current_trial_id}
        self._call("touch worker", self._workers.update_one, {"_id": worker_id}, {"$set": sets})

    def list_workers(self) -> list[WorkerInfo]:
        out = []
        for d in self._find("list workers", self._workers, {}, sort=[("last_seen", DESCENDING)]):
            w = json.loads(d["data"])
            w.update(last_seen=d["last_seen"], status=d["status"], current_trial_id=d["current_trial_id"])
            out.append(WorkerInfo(**w))
        return out

    # ------------------------------------------------------------------ tokens
    def _insert_token(self, info: TokenInfo, token_hash: str) -> None:
        doc = {**info.to_dict(), "hash": token_hash}
        doc["_id"] = doc.pop("id")
        self._call("insert token", self._tokens.insert_one, doc)

    @staticmethod
    def _token(d: Doc) -> TokenInfo:
        return TokenInfo(
            id=d["_id"],
            name=d["name"],
            admin=bool(d["admin"]),
            created_at=d["created_at"],
            last_used_at=d.get("last_used_at"),
            revoked=bool(d.get("revoked")),
            code=bool(d.get("code")),
        )

    def _token_by_hash(self, token_hash: str) -> TokenInfo | None:
        d = self._call("read token", self._tokens.find_one, {"hash": token_hash})
        return None if d is None else self._token(d)

    def list_tokens(self) -> list[TokenInfo]:
        return [
            self._token(d)
            for d in self._find("list tokens", self._tokens, {}, sort=[("created_at", ASCENDING)])
        ]

    def _touch_token(self, token_id: str, now: float) -> None:
        self._call("touch token", self._tokens.update_one, {"_id": token_id}, {"$set": {"last_used_at": now}})

    def revoke_token(self, token_id: str) -> None:
        res = self._call(
            "revoke token", self._tokens.update_one, {"_id": token_id}, {"$set": {"revoked": True}}
        )
        if res.matched_count == 0:
            raise NotFound("token", token_id)

    # ------------------------------------------------------------------ datasets
    def save_dataset(self, info: DatasetInfo, chunks: Iterable[bytes]) -> DatasetInfo:
        """Chunks first (re-cut to at most :data:`CHUNK_BYTES`), metadata last, so a listed dataset is
        complete. :class:`Conflict` if the id exists."""
        if self._call("read dataset", self._datasets.find_one, {"_id": info.id}, {"_id": 1}) is not None:
            raise Conflict(f"dataset {info.id} already exists in this store")
        self._call("clear chunks of a crashed save", self._chunks.delete_many, {"dataset_id": info.id})
        seq = 0
        for chunk in chunks:
            for i in range(0, len(chunk), CHUNK_BYTES):
                doc = {"dataset_id": info.id, "seq": seq, "data": bytes(chunk[i : i + CHUNK_BYTES])}
                self._call("save dataset chunk", self._chunks.insert_one, doc)
                seq += 1
        meta = {**info.to_dict(), "meta": to_json(info.meta), "chunks": seq}
        meta["_id"] = meta.pop("id")
        try:
            self._call("save dataset", self._datasets.insert_one, meta)
        except DuplicateKeyError as exc:
            raise Conflict(f"dataset {info.id} already exists in this store") from exc
        return info

    @staticmethod
    def _dataset(d: Doc) -> DatasetInfo:
        return dataset_from_dict({**d, "id": d["_id"]})

    def get_dataset(self, dataset_id: str) -> DatasetInfo:
        d = self._call("read dataset", self._datasets.find_one, {"_id": dataset_id})
        if d is None:
            raise NotFound("dataset", dataset_id)
        return self._dataset(d)

    def list_datasets(self, *, owner: str | None = None) -> list[DatasetInfo]:
        flt = {} if owner is None else {"owner": owner}
        docs = self._find("list datasets", self._datasets, flt, sort=[("created_at", DESCENDING)])
        return [self._dataset(d) for d in docs]

    def read_dataset(self, dataset_id: str) -> Iterator[bytes]:
        self.get_dataset(dataset_id)
        seq = 0
        while True:  # one chunk per read: a large dataset never sits in memory whole
            flt = {"dataset_id": dataset_id, "seq": seq}
            d = self._call("read dataset chunk", self._chunks.find_one, flt, {"data": 1})
            if d is None:
                return
            yield bytes(d["data"])
            seq += 1

    def delete_dataset(self, dataset_id: str) -> None:
        if self._call("delete dataset", self._datasets.delete_one, {"_id": dataset_id}).deleted_count == 0:
            raise NotFound("dataset", dataset_id)
        self._call("delete dataset chunks", self._chunks.delete_many, {"dataset_id": dataset_id})

    # ------------------------------------------------------------------ quotas
    def get_quota(self, owner: str) -> dict[str, int | None] | None:
        d = self._call("read quota", self._quotas.find_one, {"_id": owner})
        return None if d is None else dict(json.loads(d["limits"]))

    def _put_quota(self, owner: str, limits: dict[str, int | None], now: float) -> None:
        doc = {"_id": owner, "limits": to_json(limits), "updated_at": now}
        self._call("save quota", self._quotas.replace_one, {"_id": owner}, doc, upsert=True)

    def delete_quota(self, owner: str) -> None:
        if self._call("delete quota", self._quotas.delete_one, {"_id": owner}).deleted_count == 0:
            raise NotFound("quota", owner)

    def list_quotas(self) -> dict[str, dict[str, int | None]]:
        docs = self._find("list quotas", self._quotas, {}, sort=[("_id", ASCENDING)])
        return {d["_id"]: dict(json.loads(d["limits"])) for d in docs}

    def usage(self, owner: str) -> Usage:
        """Small fields of the owner's searches and datasets (no documents or trials are read)."""
        fields = {"status": 1, "max_trials": 1, "slots_taken": 1, "document_bytes": 1}
        searches = self._find("read usage", self._searches, {"owner": owner}, fields)
        datasets = self._find("read usage", self._datasets, {"owner": owner}, {"size": 1})
        started = sum(int(d.get("slots_taken", 0)) for d in searches)
        stored = (
            sum(int(d.get("size", 0)) for d in datasets)
            + sum(int(d.get("document_bytes", 0)) for d in searches)
            + started * TRIAL_BYTES_ESTIMATE
        )
        return Usage(
            running_searches=sum(d["status"] in RUNNABLE for d in searches),
            stored_bytes=stored,
            trials=sum(int(d["max_trials"]) for d in searches),
        )

    # ------------------------------------------------------------------ import
    def _insert_imported(self, search: Search, trials: list[Trial]) -> None:
        """Trials first, the search last: no claim sees the search before its trials are in."""
        orphans = {"search_id": search.id}  # left by an import that died half-way (the search is absent)
        self._call("clear orphan trials", self._trials.delete_many, orphans)
        try:
            if trials:
                docs = [trial_doc_of(t, seq=i + 1) for i, t in enumerate(trials)]
                self._call("import trials", self._trials.insert_many, docs, ordered=True)
            self._call("import search", self._searches.insert_one, search_doc_of(search, seq=len(trials)))
        except (DuplicateKeyError, BulkWriteError) as exc:
            if self._call("read search", self._searches.find_one, {"_id": search.id}, {"_id": 1}) is None:
                self._call("clear orphan trials", self._trials.delete_many, orphans)
            raise Conflict(
                f"search {search.id} or one of its trial ids already exists in this store"
            ) from exc
