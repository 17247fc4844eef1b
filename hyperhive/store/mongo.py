"""The distributed store: MongoDB (pymongo >= 4), shared by the API server and workers on many machines.

Chosen by a ``mongodb://`` or ``mongodb+srv://`` store URL; the database is the URL's path (default
``hyperhive``). Writes use write concern ``majority`` unless the URL sets ``w``, retryable writes and
reads are on, and server selection gives up after 10 s unless the URL sets ``serverSelectionTimeoutMS``.

Why no transactions
-------------------
Every state change is one atomic single-document update: a trial moves with ``find_one_and_update``
whose filter holds the state it expects (and, for a lease holder, the lease token), so two workers, a
worker and a sweeper, or two sweepers can never both move the same trial. Multi-document transactions
would need a replica set (and mongomock has none); they are not needed, because the only other
document a change touches is its search's counters, and those updates are made *idempotent and
recoverable* as below (the "two-phase commit" pattern MongoDB documented before it had transactions).

Counters on the search document
    ``counts.<state>``, ``unfinished`` (= ``max_trials`` minus finished trials), ``consecutive_failures``,
    ``best_value``/``best_trial_id`` and the budget fields ``slots_left``/``slots_taken`` live on the
    search document, so ``get_search`` is one read and a claim one conditional update, whatever the
    number of trials.

Trial transitions (queued -> running -> final, requeue, release, cancel)
    1. The trial's ``find_one_and_update`` (expected state and token in the filter) also pushes an *op*
       onto the trial's ``pending`` list: an id and the counter deltas the change implies.
    2. The op is applied to the search with one update whose filter is ``ops != op.id`` and which pushes
       ``op.id`` onto the search's ``ops`` list (the last :data:`OPS_KEPT`): applying an op twice matches
       nothing, so counts are never moved twice.
    3. Follow-ups that are idempotent by construction: the best trial (a conditional ``$set`` that only
       matches while ``best_value`` is worse), completion (``status`` runnable and ``unfinished <= 0``:
       ``completed`` with ``counts.done > 0``, else ``failed``), failure after
       ``max_consecutive_failures`` or at once for an op carrying a ``search_error`` (which then cancels
       the open trials, each through step 1). The sweep completes a finished search only when none of
       its trials holds an op: the last op's follow-ups may fail the search instead.
    4. The op is pulled from the trial's ``pending`` list.
    A process that dies between 1 and 4 leaves the op on the trial; the repair sweep (run by every
    process, see :meth:`MongoStore.repair`) replays ops older than ``repair_grace`` seconds through
    steps 2-4. A replay is exact unless more than :data:`OPS_KEPT` other ops were applied to the same
    search between the crash and the replay (seconds, in practice); that bound is the one assumption.

Claiming a new slot (two steps, no slot taken twice, none lost)
    A. Read the fairest runnable search (fewest running trials, then least recently claimed) and take
       its slot ``k = slots_taken`` with a compare-and-set update: filter ``slots_taken == k`` and
       ``slots_left > 0``, update ``$inc slots_taken/counts.running, slots_left -1`` and ``$push`` a
       *pending slot* ``{trial_id, number: k, lease_token, worker_id, lease_expires_at, at}`` onto the
       search. Only one claimer can win the compare-and-set for ``k``: a slot is never taken twice, and
       the losers read again.
    B. Insert the trial, built deterministically from the pending slot (``running``, no config yet).
    C. Pull the pending slot from the search.
    If the claimer dies after A, the repair sweep finds the pending slot (older than ``repair_grace``),
    inserts the very same trial (a duplicate-key error means it exists already) and pulls the entry:
    the slot is not lost, and the trial is later requeued like any trial whose lease expired, so the
    next claimer makes its suggestion. A claimer slower than the sweep meets the duplicate-key error,
    and keeps the trial only if it still holds the lease.

Requeue with many sweepers
    Expired leases are found with the ``(state, lease_expires_at)`` index and each trial is moved with
    a filter on ``state: running``, its lease token and ``lease_expires_at < now``: exactly one sweeper
    moves it, a heartbeat that renewed the lease in between wins, and a report under the same token wins.

Indexes (created idempotently at startup; they keep every hot query an index lookup at 100,000 trials)
    trials: ``(search_id, number)`` unique (slot numbers; listings by number; history versions),
    ``(state, lease_expires_at)`` (the lease sweep), ``(state, updated_at, number)`` (oldest queued
    trial), ``(search_id, state)`` (counts and listings by state), ``(search_id, value, number)``,
    ``(search_id, finished_at)`` and ``(search_id, created_at)`` (sorted listings; ``best_trial`` reads
    ``best_trial_id`` from the search), ``pending.at`` (op replay). searches: ``(status, counts.running,
    last_claim_at, created_at)`` (the fair claim), ``created_at``, ``pending_slots.at``. tokens:
    ``hash`` unique. dataset_chunks: ``(dataset_id, seq)`` unique. workers: ``last_seen``.
    (mongomock's ``explain`` says nothing about plans, so no benchmark was possible here; on a real
    server, check a query's plan with ``db.trials.find(...).explain()``.)

Free-form mappings (``document``, ``config``, ``vals``, ``metrics``, ``history``, ``info``, dataset
``meta``, worker records) are stored as JSON strings: hyperopt labels such as ``model.layers[0].units``
contain dots, which MongoDB field names do not tolerate everywhere, and the round trip is then exact.
``history`` is an array of such strings, one per epoch, so a heartbeat appends its new epochs with one
``$push`` (``$position``/``$slice``, see "History" in :mod:`hyperhive.store.base`) instead of rewriting
the list; a trial written as one string by an older version is converted on its next append.

Connection loss and elections
    The driver retries a failed write once (retryable writes). Beyond that, every call is retried with
    exponential backoff for up to ``retry_seconds`` (default 30 s, longer than an election) on
    ``ConnectionFailure`` (``AutoReconnect``, ``NotPrimaryError``, ``ServerSelectionTimeoutError``, ...)
    and retryable server errors, then :class:`~hyperhive.errors.StoreUnavailable` naming the hosts is
    raised, so a worker's own retry loop handles longer outages. Retried writes are safe: every one is
    conditional or deduplicated, and a report whose write reached the server before the connection
    broke is recognised by its reported token.

Tests run against mongomock, whose ``find_one_and_update`` is a find followed by an update: each call on
a mongomock client holds a lock here, which gives it the single-document atomicity of a server. A call
whose write reached the server but whose answer was lost, and which the retry then finds changed, is
recovered like a crash: the op or pending slot it recorded is finished by the repair sweep.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import pymongo
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidURI,
    OperationFailure,
)
from pymongo.write_concern import WriteConcern

from hyperhive.errors import BadStoreURL, Conflict, LeaseLost, NotFound, StoreUnavailable
from hyperhive.models import (
    RUNNABLE_SEARCH_STATUSES,
    DatasetInfo,
    Search,
    SearchStatus,
    TokenInfo,
    Trial,
    TrialCounts,
    TrialState,
    WorkerInfo,
)
from hyperhive.policy import Policy
from hyperhive.quotas import TRIAL_BYTES_ESTIMATE, Usage
from hyperhive.store import rules
from hyperhive.store.base import (
    TRIAL_SORT_FIELDS,
    Outcome,
    Store,
    epoch_gap,
    extend_refused,
    new_id,
    new_lease_token,
    runs_code,
    trial_limit,
    trial_seed,
)
from hyperhive.store.codec import dataset_from_dict, search_from_dict, trial_from_dict
from hyperhive.store.rows import TrialRow
from hyperhive.store.rules import Counters, Finished
from hyperhive.store.urls import redact_url, scrub

T = TypeVar("T")
Doc = dict[str, Any]

DEFAULT_DATABASE = "hyperhive"
DEFAULT_SERVER_SELECTION_MS = 10_000
DEFAULT_CONNECT_MS = 10_000
OPS_KEPT = 1000
"""How many applied op ids a search remembers (see the module docstring)."""
CHUNK_BYTES = 4 << 20
"""Dataset bytes are stored in documents of at most this size (MongoDB's limit is 16 MiB)."""
CAS_ATTEMPTS = 200

QUEUED, RUNNING, CANCELLED = str(TrialState.QUEUED), str(TrialState.RUNNING), str(TrialState.CANCELLED)
_RUNNABLE = [str(s) for s in RUNNABLE_SEARCH_STATUSES]
_FINAL_SEARCH = [str(s) for s in SearchStatus if s.is_final]
_REOPENABLE = [str(SearchStatus.COMPLETED), str(SearchStatus.FAILED)]
_OPEN = [QUEUED, RUNNING]
_COUNTS = tuple(str(s) for s in TrialState)
_FAIR = [("counts.running", ASCENDING), ("last_claim_at", ASCENDING), ("created_at", ASCENDING)]
_NULLABLE_SORTS = ("value", "finished_at")
_SEARCH_FIELDS = {"ops": 0, "pending_slots": 0}
_TRIAL_FIELDS = {"pending": 0}
_JSON_TRIAL_FIELDS = ("config", "vals", "metrics", "history", "info")
_ROW_FIELDS = ("number", "state", "value", "vals", "started_at", "finished_at", "worker_id", "version")
_AFTER = ReturnDocument.AFTER
# server error codes that mean "try again" (host unreachable or not found, network timeout, shutting
# down, not primary, primary stepped down, interrupted by a step-down, ...)
_RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
_AUTH_FAILED = 18
_INDEXES: dict[str, list[tuple[str, list[tuple[str, int]], bool]]] = {
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
    ],
    "searches": [
        ("status_fair", [("status", 1), *_FAIR], False),
        ("created", [("created_at", -1)], False),
        ("pending_slots", [("pending_slots.at", 1)], False),
        ("owner_status", [("owner", 1), ("status", 1)], False),
    ],
    "tokens": [("hash", [("hash", 1)], True)],
    "datasets": [("owner", [("owner", 1)], False)],
    "dataset_chunks": [("seq", [("dataset_id", 1), ("seq", 1)], True)],
    "workers": [("last_seen", [("last_seen", -1)], False)],
}


def _counters(doc: Doc) -> Counters:
    """The counters of a search document."""
    counts = TrialCounts(**{k: int((doc.get("counts") or {}).get(k, 0)) for k in _COUNTS})
    return Counters(
        counts, int(doc.get("consecutive_failures") or 0), doc.get("best_trial_id"), doc.get("best_value")
    )


def _finished(op: Doc, trial_id: str) -> Finished | None:
    """The trial turning final that an op records, or ``None`` for an op that finishes no trial (ops
    written before ``state`` was recorded are read from their failure error and best value)."""
    if "state" in op:
        state = TrialState(op["state"])
    elif op.get("fail_error") is not None:
        state = TrialState.FAILED
    elif op.get("best") is not None:
        state = TrialState.DONE
    else:
        return None
    if not state.is_final:
        return None
    return Finished(state, trial_id, op.get("best"), op.get("fail_error"), op.get("search_error"))


_CLIENT_LOCKS: dict[int, threading.RLock] = {}
_CLIENT_LOCKS_GUARD = threading.Lock()


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), allow_nan=False)


def _loads(s: str | None) -> Any:
    return None if s is None else json.loads(s)


# ---------------------------------------------------------------------------------------------- URLs
def parse_mongo_url(url: str) -> dict[str, Any]:
    """Validate a MongoDB store URL without contacting any server (no DNS lookup for ``+srv``).

    Returns pymongo's parse (``nodelist``, ``username``, ``database``, ``options``, ``fqdn``). Raises
    :class:`~hyperhive.errors.BadStoreURL` saying what is wrong (scheme, host, port, database name,
    unknown or invalid option), with the password masked.
    """
    shown = redact_url(url)
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise BadStoreURL(f"bad MongoDB store URL {shown!r}: it must start with mongodb:// or mongodb+srv://")
    try:
        return _parse(url)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        reason = str(exc)
    if shown != url:
        # pymongo's reason for the URL without its secrets: a reason cannot quote what it never saw
        try:
            _parse(shown)
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            reason = str(exc)
        else:
            reason = (
                "the user name, password or a secret option is not escaped as RFC 3986 asks (percent-encode "
                "':', '/', '?', '#', '[', ']', '@' and '%' in them, e.g. with urllib.parse.quote_plus)"
            )
    raise BadStoreURL(f"bad MongoDB store URL {shown!r}: {scrub(reason, url)}")


def _parse(url: str) -> dict[str, Any]:
    try:
        from pymongo.uri_parser_shared import _validate_uri  # no SRV lookup, unlike parse_uri
    except ImportError:  # pragma: no cover - pymongo < 4.9
        return dict(pymongo.uri_parser.parse_uri(url))
    return dict(_validate_uri(url))


def _hosts_text(parsed: dict[str, Any]) -> str:
    if parsed.get("fqdn"):
        return f"{parsed['fqdn']} (SRV)"
    return ", ".join(f"{h}:{p}" for h, p in parsed.get("nodelist") or []) or "?"


def _client_lock(client: Any) -> AbstractContextManager[Any]:
    """A lock per mongomock client (one call at a time, like a server's document lock); none for pymongo."""
    if isinstance(client, pymongo.MongoClient):
        return nullcontext()
    with _CLIENT_LOCKS_GUARD:
        return _CLIENT_LOCKS.setdefault(id(client), threading.RLock())


def _history_doc(history: list[dict[str, Any]] | None) -> list[str]:
    """A history as stored: one JSON string per epoch."""
    return [_dumps(e) for e in history or []]


def _history_of(stored: Any) -> list[dict[str, Any]]:
    """A stored history read back (an array of per-epoch strings, or one string from older versions)."""
    if isinstance(stored, str):
        return list(json.loads(stored))
    return [json.loads(e) for e in stored or []]


def _cleared_lease(now: float, **fields: Any) -> Doc:
    """``$set`` fields of a trial leaving ``running``: no lease any more."""
    return {"lease_token": None, "lease_expires_at": None, "updated_at": now, **fields}


# ---------------------------------------------------------------------------------------------- store
class MongoStore(Store):
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

    client_factory: Callable[..., Any] = pymongo.MongoClient
    """What makes the client when none is given (tests put a mongomock factory here)."""

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
        self._url = url.strip()
        self.url = redact_url(self._url)
        """The URL with its password masked: safe to log (the store keeps the real one to itself)."""
        parsed = parse_mongo_url(self._url)
        self.hosts = _hosts_text(parsed)
        self.username: str | None = parsed.get("username")
        self.retry_seconds = retry_seconds
        self.repair_grace = repair_grace
        self.repair_interval = repair_interval
        self._last_repair = float("-inf")
        options = {k.lower(): v for k, v in (parsed.get("options") or {}).items()}
        # pymongo's parse gives timeouts in seconds
        self._selection_s = float(options.get("serverselectiontimeoutms", DEFAULT_SERVER_SELECTION_MS / 1000))
        self._owns_client = client is None
        if client is None:
            client = self._connect(options)
        self.client: Any = client
        self._lock = _client_lock(client)
        self.database: str = database or parsed.get("database") or DEFAULT_DATABASE
        # majority unless the URL says otherwise; None keeps the URL's w
        self.write_concern = None if "w" in options else WriteConcern(w="majority")
        self.db: Any = client.get_database(self.database, write_concern=self.write_concern)
        self._searches = self.db["searches"]
        self._trials = self.db["trials"]
        self._workers = self.db["workers"]
        self._tokens = self.db["tokens"]
        self._datasets = self.db["datasets"]
        self._chunks = self.db["dataset_chunks"]
        self._quotas = self.db["quotas"]
        self._run("connect and create indexes", self.ensure_indexes, retry=False)

    def _connect(self, options: dict[str, Any]) -> Any:
        defaults = {
            "serverSelectionTimeoutMS": DEFAULT_SERVER_SELECTION_MS,
            "connectTimeoutMS": DEFAULT_CONNECT_MS,
            "appname": "hyperhive",
        }
        kwargs: dict[str, Any] = {k: v for k, v in defaults.items() if k.lower() not in options}
        try:
            return self.client_factory(self._url, retryWrites=True, retryReads=True, connect=False, **kwargs)
        except ConfigurationError as exc:  # e.g. an SRV record that cannot be resolved
            raise StoreUnavailable(
                f"cannot reach MongoDB at {self.hosts}: {scrub(str(exc), self._url)}"
            ) from None
        except (InvalidURI, ValueError, TypeError) as exc:
            raise BadStoreURL(f"bad MongoDB store URL {self.url!r}: {scrub(str(exc), self._url)}") from None

    # ------------------------------------------------------------------ calls, retries, errors
    def _run(self, what: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """Run one database call; retry connection loss with backoff for ``retry_seconds``, then raise
        :class:`StoreUnavailable`. ``retry=False``: one attempt (startup: fail fast and say why)."""
        start = time.monotonic()
        delay = 0.05
        while True:
            try:
                with self._lock:
                    return fn()
            except (ConnectionFailure, ConfigurationError) as exc:  # the latter: an SRV lookup that failed
                failure: Exception = exc
            except OperationFailure as exc:
                if exc.code == _AUTH_FAILED:
                    raise BadStoreURL(
                        f"MongoDB at {self.hosts} refused the credentials of the store URL (user "
                        f"{self.username!r}; a user created in the admin database needs ?authSource=admin)"
                    ) from exc
                if exc.code not in _RETRYABLE_CODES and not exc.has_error_label("RetryableWriteError"):
                    raise
                failure = exc
            elapsed = time.monotonic() - start
            if not retry or elapsed + delay > self.retry_seconds:
                reason = scrub(str(failure).split(", Timeout:")[0], self._url)
                raise StoreUnavailable(
                    f"cannot reach MongoDB at {self.hosts} ({what}; server selection timeout "
                    f"{self._selection_s:g} s, gave up after {elapsed:.1f} s): {reason}"
                ) from failure
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` through :meth:`_run`."""
        return self._run(what, functools.partial(fn, *args, **kwargs))

    def _find(
        self,
        what: str,
        coll: Any,
        flt: Doc,
        projection: Doc | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Doc]:
        """The documents of one query, read whole inside the retry loop."""

        def run() -> list[Doc]:
            cursor = coll.find(flt, projection)
            if sort:
                cursor = cursor.sort(sort)
            if skip:
                cursor = cursor.skip(skip)
            if limit is not None:
                cursor = cursor.limit(limit)
            return list(cursor)

        return self._run(what, run)

    def ensure_indexes(self) -> None:
        """Create every index (idempotent: existing ones are left as they are)."""
        for coll, indexes in _INDEXES.items():
            for name, keys, unique in indexes:
                self.db[coll].create_index(keys, name=name, unique=unique)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def ping(self) -> None:
        """One attempt, no retries: a health probe answers now (within the server selection timeout)."""
        self._run("ping", functools.partial(self.db.command, "ping"), retry=False)

    # ------------------------------------------------------------------ documents <-> records
    @staticmethod
    def _search_doc(s: Search) -> Doc:
        d = s.to_dict()
        document = _dumps(s.document)
        d.update(
            _id=d.pop("id"),
            document=document,
            document_bytes=len(document),
            counts={k: d["counts"][k] for k in _COUNTS},
            slots_taken=s.counts.total,
            slots_left=s.max_trials - s.counts.total,
            unfinished=s.max_trials - s.counts.finished,
            last_claim_at=0.0,
            pending_slots=[],
            ops=[],
            code=runs_code(s.document),
        )
        return d

    @staticmethod
    def _search(doc: Doc) -> Search:
        return search_from_dict({**doc, "id": doc["_id"], "document": json.loads(doc["document"])})

    @staticmethod
    def _trial_doc(t: Trial) -> Doc:
        d = t.to_dict()
        d["_id"] = d.pop("id")
        for k in _JSON_TRIAL_FIELDS:
            d[k] = None if d[k] is None else _dumps(d[k])
        d["history"] = _history_doc(t.history)
        d["pending"] = []
        return d

    @staticmethod
    def _trial(doc: Doc) -> Trial:
        fields = {k: _loads(doc.get(k)) for k in _JSON_TRIAL_FIELDS if k != "history"}
        return trial_from_dict(
            {**doc, "id": doc["_id"], **fields, "history": _history_of(doc.get("history"))}
        )

    def _find_search(self, search_id: str, projection: Doc | None = None) -> Doc:
        doc = self._call(
            "read search", self._searches.find_one, {"_id": search_id}, projection or _SEARCH_FIELDS
        )
        if doc is None:
            raise NotFound("search", search_id)
        return dict(doc)

    def _find_trial(self, trial_id: str) -> Doc:
        doc = self._call("read trial", self._trials.find_one, {"_id": trial_id}, _TRIAL_FIELDS)
        if doc is None:
            raise NotFound("trial", trial_id)
        return dict(doc)

    # ------------------------------------------------------------------ ops: trial change + search delta
    @staticmethod
    def _op(
        now: float,
        inc: dict[str, int],
        *,
        set_: Doc | None = None,
        best: float | None = None,
        fail_error: str | None = None,
    ) -> Doc:
        """The search-side effect of one trial transition, stored on the trial until applied."""
        return {
            "id": new_id(),
            "at": now,
            "inc": [[k, v] for k, v in inc.items()],
            "set": [[k, v] for k, v in {"updated_at": now, **(set_ or {})}.items()],
            "best": best,
            "fail_error": fail_error,
        }

    def _move(
        self, what: str, flt: Doc, set_: Doc, op: Doc, *, inc: dict[str, int] | None = None
    ) -> Doc | None:
        """Atomically change the one trial matching ``flt`` and record ``op`` on it; then apply ``op``.
        Returns the changed trial's document, or ``None`` if no trial matched (state or token moved)."""
        update = {"$set": set_, "$inc": {"version": 1, **(inc or {})}, "$push": {"pending": op}}
        doc = self._call(
            what,
            self._trials.find_one_and_update,
            flt,
            update,
            projection=_TRIAL_FIELDS,
            return_document=_AFTER,
        )
        if doc is None:
            return None
        self._apply_op(doc["search_id"], doc["_id"], op)
        return dict(doc)

    def _apply_op(self, search_id: str, trial_id: str, op: Doc) -> None:
        """Steps 2-4 of the module docstring; safe to run any number of times for one op."""
        update: Doc = {"$push": {"ops": {"$each": [op["id"]], "$slice": -OPS_KEPT}}, "$set": dict(op["set"])}
        if op["inc"]:
            update["$inc"] = dict(op["inc"])
        doc = self._call(
            "update search counters",
            self._searches.find_one_and_update,
            {"_id": search_id, "ops": {"$ne": op["id"]}},
            update,
            projection=_SEARCH_FIELDS,
            return_document=_AFTER,
        )
        if doc is None:  # applied before (a replay), or the search is gone
            doc = self._call("read search", self._searches.find_one, {"_id": search_id}, _SEARCH_FIELDS)
        if doc is not None:
            self._settle(doc, trial_id, op)
        self._call(
            "clear op", self._trials.update_one, {"_id": trial_id}, {"$pull": {"pending": {"id": op["id"]}}}
        )

    def _settle(self, doc: Doc, trial_id: str, op: Doc) -> None:
        """Idempotent follow-ups of an op (the :mod:`~hyperhive.store.rules` applied to the search as the
        op left it): best trial, failure at once, completion. Each is a conditional update whose filter
        re-checks the rule's condition, so concurrent settles and replays agree."""
        sid, now, mode = doc["_id"], self.clock(), doc["objective_mode"]
        finished = _finished(op, trial_id)
        if finished is not None and rules.becomes_best(finished, doc.get("best_value"), mode):
            best = finished.value
            worse = {"$gt": best} if mode == "min" else {"$lt": best}
            self._call(
                "update best trial",
                self._searches.update_one,
                {"_id": sid, "$or": [{"best_value": None}, {"best_value": worse}]},
                {"$set": {"best_value": best, "best_trial_id": trial_id}},
            )
        status, counters = SearchStatus(doc["status"]), _counters(doc)
        limits = {
            "max_trials": doc["max_trials"],
            "max_consecutive_failures": doc["max_consecutive_failures"],
        }
        verdict = rules.verdict(status, counters, finished=finished, **limits)
        if verdict is not None and verdict.cancel_open:
            flt: Doc = {"_id": sid, "status": {"$in": _RUNNABLE}}
            if finished is None or finished.search_error is None:
                flt["consecutive_failures"] = {"$gte": limits["max_consecutive_failures"]}
            sets = {
                "status": str(verdict.status),
                "finished_at": now,
                "updated_at": now,
                "error": verdict.error,
            }
            if self._call("fail search", self._searches.update_one, flt, {"$set": sets}).modified_count:
                self._cancel_open_trials(sid)
                return
            verdict = rules.verdict(status, counters, **limits)  # the budget alone
        if verdict is not None:
            self._complete_if_done(sid, op.get("fail_error"))

    def _complete_if_done(self, search_id: str, last_error: str | None = None) -> None:
        """Mark a runnable search whose budget is spent ``completed``, or ``failed`` when none of its
        trials is done (``last_error``: the error of the trial that spent it, if it failed)."""
        now = self.clock()
        spent: Doc = {"_id": search_id, "status": {"$in": _RUNNABLE}, "unfinished": {"$lte": 0}}
        res = self._call(
            "complete search",
            self._searches.update_one,
            {**spent, "counts.done": {"$gt": 0}},
            {"$set": {"status": str(SearchStatus.COMPLETED), "finished_at": now, "updated_at": now}},
        )
        if res.modified_count:
            return
        fields = {"status": 1, "counts": 1, "max_trials": 1, "max_consecutive_failures": 1}
        doc = self._call("read search", self._searches.find_one, {**spent, "counts.done": 0}, fields)
        if doc is None:
            return
        verdict = rules.verdict(
            SearchStatus(doc["status"]),
            _counters(doc),
            max_trials=doc["max_trials"],
            max_consecutive_failures=doc["max_consecutive_failures"],
            last_error=lambda: self._last_failed_error(search_id) if last_error is None else last_error,
        )
        if verdict is None or verdict.status != SearchStatus.FAILED:
            return
        self._call(
            "fail search",
            self._searches.update_one,
            {**spent, "counts.done": 0},
            {
                "$set": {
                    "status": str(SearchStatus.FAILED),
                    "finished_at": now,
                    "updated_at": now,
                    "error": verdict.error,
                }
            },
        )

    def _last_failed_error(self, search_id: str) -> str | None:
        """The error of the search's most recently finished failed trial."""
        failed = self._find(
            "read last failed trial",
            self._trials,
            {"search_id": search_id, "state": str(TrialState.FAILED)},
            {"error": 1},
            sort=[("finished_at", DESCENDING), ("number", DESCENDING)],
            limit=1,
        )
        return failed[0].get("error") if failed else None

    def _cancel_open_trials(self, search_id: str) -> int:
        """Cancel every queued or running trial of the search, one conditional move each."""
        changed = 0
        for _ in range(CAS_ATTEMPTS):
            found = self._find(
                "list open trials",
                self._trials,
                {"search_id": search_id, "state": {"$in": _OPEN}},
                {"state": 1},
            )
            if not found:
                break
            for t in found:
                changed += self._cancel_trial(t["_id"], {}, t["state"]) is not None
        return changed

    def _cancel_trial(self, trial_id: str, flt: Doc, state: str) -> Doc | None:
        """Move the trial from ``state`` (and ``flt``) to ``cancelled``."""
        now = self.clock()
        op = self._op(now, {f"counts.{state}": -1, "counts.cancelled": 1, "unfinished": -1})
        sets = _cleared_lease(now, state=CANCELLED, finished_at=now)
        return self._move("cancel trial", {**flt, "_id": trial_id, "state": state}, sets, op)

    # ------------------------------------------------------------------ searches
    def _insert_search(self, search: Search) -> None:
        self._call("insert search", self._searches.insert_one, self._search_doc(search))

    def get_search(self, search_id: str) -> Search:
        return self._search(self._find_search(search_id))

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
            "list searches", self._searches, flt, _SEARCH_FIELDS, sort=order, skip=offset, limit=limit
        )
        return [self._search(d) for d in docs]

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
            {"_id": search_id, "status": {"$in": _RUNNABLE}},
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
            for statuses, sets in ((_REOPENABLE, reopen), (_RUNNABLE, {})):
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
                {"code": True, "status": {"$in": _RUNNABLE}},
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
                projection=_TRIAL_FIELDS,
                sort=[("updated_at", ASCENDING), ("number", ASCENDING)],
                return_document=_AFTER,
            )
            if doc is None:
                continue  # taken by another claimer between the read and the update
            self._apply_op(doc["search_id"], doc["_id"], op)
            search = self._call(
                "read search", self._searches.find_one, {"_id": doc["search_id"]}, {"status": 1}
            )
            if search is None:  # an orphan of a deleted search
                self._call("delete orphan trial", self._trials.delete_one, {"_id": doc["_id"]})
            elif search["status"] not in _RUNNABLE:  # a cancel or failure still sweeping its trials
                self._cancel_trial(doc["_id"], {"lease_token": token}, RUNNING)
            else:
                return self._trial(doc)
        return None

    def _claim_new_slot(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        flt: Doc = {"status": {"$in": _RUNNABLE}, "slots_left": {"$gt": 0}}
        if search_id:
            flt["_id"] = search_id
        if not allow_code:
            flt["code"] = {"$ne": True}
        for attempt in range(CAS_ATTEMPTS):
            fields = {"seed": 1, "slots_taken": 1, "started_at": 1}
            cand = self._call("find runnable search", self._searches.find_one, flt, fields, sort=_FAIR)
            if cand is None:
                return None
            number = int(cand["slots_taken"])
            slot = {
                "trial_id": new_id(),
                "number": number,
                "worker_id": worker_id,
                "lease_token": new_lease_token(),
                "lease_expires_at": now + lease_seconds,
                "at": now,
            }
            sets: Doc = {"status": str(SearchStatus.RUNNING), "last_claim_at": now, "updated_at": now}
            if cand.get("started_at") is None:
                sets["started_at"] = now
            res = self._call(
                "take slot",
                self._searches.update_one,
                {**flt, "_id": cand["_id"], "slots_taken": number},
                {
                    "$inc": {"slots_taken": 1, "slots_left": -1, "counts.running": 1},
                    "$set": sets,
                    "$push": {"pending_slots": slot},
                },
            )
            if res.modified_count:
                return self._insert_slot_trial(cand["_id"], int(cand["seed"]), slot)
            time.sleep(random.random() * 0.002 * min(attempt + 1, 10))  # lost the race for this slot
        return None

    def _insert_slot_trial(self, search_id: str, search_seed: int, slot: Doc) -> Trial | None:
        """Steps B and C: insert the trial a pending slot describes, then drop the pending slot.
        Returns the trial if the slot's lease is still held on it, else ``None``."""
        number = int(slot["number"])
        trial: Trial | None = Trial(
            id=slot["trial_id"],
            search_id=search_id,
            number=number,
            state=TrialState.RUNNING,
            config=None,
            vals=None,
            seed=trial_seed(search_seed, number),
            created_at=slot["at"],
            updated_at=slot["at"],
            worker_id=slot["worker_id"],
            lease_token=slot["lease_token"],
            lease_expires_at=slot["lease_expires_at"],
            attempts=1,
            started_at=slot["at"],
        )
        assert trial is not None
        try:
            self._call("insert trial", self._trials.insert_one, self._trial_doc(trial))
        except DuplicateKeyError:  # the sweep (or our own retried write) inserted it already
            current = self._call(
                "read trial", self._trials.find_one, {"_id": slot["trial_id"]}, _TRIAL_FIELDS
            )
            trial = None if current is None else self._trial(current)
        self._call(
            "drop pending slot",
            self._searches.update_one,
            {"_id": search_id},
            {"$pull": {"pending_slots": {"trial_id": slot["trial_id"]}}},
        )
        if trial is None or trial.state != TrialState.RUNNING or trial.lease_token != slot["lease_token"]:
            return None
        return trial

    def _set_suggestion(
        self, trial_id: str, lease_token: str, vals: dict[str, list[Any]], config: dict[str, Any]
    ) -> Trial:
        doc = self._call(
            "save suggestion",
            self._trials.find_one_and_update,
            {"_id": trial_id, "state": RUNNING, "lease_token": lease_token},
            {
                "$set": {"vals": _dumps(vals), "config": _dumps(config), "updated_at": self.clock()},
                "$inc": {"version": 1},
            },
            projection=_TRIAL_FIELDS,
            return_document=_AFTER,
        )
        if doc is None:
            self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is no longer held by this lease")
        return self._trial(doc)

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
            sets["history"] = _history_doc(history)
        flt: Doc = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        update: Doc = {"$set": sets, "$inc": {"version": 1}}
        if epochs is not None:
            k, new = epochs
            # history[:k] + new, and only when history has k entries already (no hole, no duplicate)
            flt.update({"history": {"$type": "array"}} if k == 0 else {f"history.{k - 1}": {"$exists": True}})
            each = {"$each": _history_doc(new), "$position": k, "$slice": k + len(new)}
            update["$push"] = {"history": each}
        for _ in range(2):
            doc = self._call(
                "heartbeat",
                self._trials.find_one_and_update,
                flt,
                update,
                projection=_TRIAL_FIELDS,
                return_document=_AFTER,
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
                {"$set": {"history": _history_doc(_history_of(stored))}},
            )
        if doc is None:
            current = self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current['state']})")
        search = self._call("read search", self._searches.find_one, {"_id": doc["search_id"]}, {"status": 1})
        if search is None or search["status"] in _FINAL_SEARCH:
            # the search was cancelled or failed while this trial was being claimed: cancel it now
            self._cancel_trial(trial_id, {"lease_token": lease_token}, RUNNING)
            raise LeaseLost(f"trial {trial_id}'s search is no longer running")
        return self._trial(doc)

    # ------------------------------------------------------------------ finishing, releasing, requeueing
    def _finish_op(
        self,
        state: TrialState,
        value: float | None,
        error: str | None,
        now: float,
        *,
        search_error: str | None = None,
    ) -> Doc:
        """The op of a trial turning final (its counter deltas from :mod:`~hyperhive.store.rules`);
        ``search_error``: the error that fails the search at once."""
        inc = {f"counts.{s}": n for s, n in rules.count_changes(state).items()}
        inc["unfinished"] = -1
        set_: Doc = {}
        change = rules.consecutive_change(state)
        if change:
            inc["consecutive_failures"] = change
        elif change == 0:
            set_["consecutive_failures"] = 0
        best = value if state == TrialState.DONE else None
        fail_error = (error or "") if state == TrialState.FAILED else None
        op = self._op(now, inc, set_=set_, best=best, fail_error=fail_error)
        op["state"] = str(state)
        if search_error is not None and state == TrialState.FAILED:
            op["search_error"] = search_error
        return op

    def _finish_trial(self, trial_id: str, lease_token: str, outcome: Outcome, now: float) -> Trial:
        state, value, error, history = outcome.state, outcome.value, outcome.error, outcome.history
        current = self._trial(self._find_trial(trial_id))
        reported = outcome.info.get("reported_token")
        if current.state.is_final and current.info.get("reported_token") == reported:
            return current
        if current.state != TrialState.RUNNING or current.lease_token != lease_token:
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current.state})")
        sets = _cleared_lease(
            now,
            state=str(state),
            value=value,
            loss=outcome.loss,
            metrics=_dumps(outcome.metrics),
            error=error,
            info=_dumps({**current.info, **outcome.info}),
            finished_at=now,
        )
        if history is not None:
            sets["history"] = _history_doc(history)
        flt = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        fatal = rules.search_error_message(current.number, error) if outcome.fails_search else None
        op = self._finish_op(state, value, error, now, search_error=fatal)
        doc = self._move("report", flt, sets, op)
        if doc is None:  # lost a race, or our own write got through before the connection broke
            again = self._trial(self._find_trial(trial_id))
            if again.state.is_final and again.info.get("reported_token") == reported:
                return again
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {again.state})")
        return self._trial(doc)

    def release(self, trial_id: str, lease_token: str) -> Trial:
        now = self.clock()
        op = self._op(now, {"counts.running": -1, "counts.queued": 1})
        flt = {"_id": trial_id, "state": RUNNING, "lease_token": lease_token}
        sets = _cleared_lease(now, state=QUEUED, worker_id=None)
        doc = self._move("release", flt, sets, op, inc={"attempts": -1})
        if doc is None:
            current = self._find_trial(trial_id)
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {current['state']})")
        if doc["attempts"] < 0:  # only a trial imported as running could get here
            self._call("fix attempts", self._trials.update_one, {"_id": trial_id}, {"$set": {"attempts": 0}})
            doc["attempts"] = 0
        return self._trial(doc)

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

    def _requeue_one(self, t: Doc, search: Doc | None, now: float) -> int:
        """Requeue, fail ("worker lost") or cancel one expired trial; 1 if this call moved it."""
        flt = {
            "_id": t["_id"],
            "state": RUNNING,
            "lease_token": t["lease_token"],
            "lease_expires_at": {"$lt": now},
        }
        if search is None:
            return int(self._call("delete orphan trial", self._trials.delete_one, flt).deleted_count)
        if search["status"] in _FINAL_SEARCH:
            return int(self._cancel_trial(t["_id"], flt, RUNNING) is not None)
        if t["attempts"] <= search["max_retries"]:
            op = self._op(now, {"counts.running": -1, "counts.queued": 1})
            sets = _cleared_lease(now, state=QUEUED, worker_id=None)
        else:
            error = rules.worker_lost_error(t["attempts"], search["max_retries"], t.get("worker_id"))
            op = self._finish_op(TrialState.FAILED, None, error, now)
            sets = _cleared_lease(now, state=str(TrialState.FAILED), error=error, finished_at=now)
        return int(self._move("requeue expired lease", flt, sets, op) is not None)

    def repair(self, grace: float | None = None) -> int:
        """Finish what processes that died mid-change left behind (see the module docstring): trials of
        pending slots, unapplied ops, open trials of final searches, finished searches not marked so.
        Safe to run concurrently from many processes. Returns how many repairs it made."""
        cutoff = self.clock() - (self.repair_grace if grace is None else grace)
        repaired = 0
        flt: Doc = {"pending_slots.at": {"$lt": cutoff}}
        for s in self._find("find pending slots", self._searches, flt, {"pending_slots": 1, "seed": 1}):
            for slot in s.get("pending_slots") or []:
                if slot["at"] < cutoff:
                    self._insert_slot_trial(s["_id"], int(s["seed"]), slot)
                    repaired += 1
        for t in self._find(
            "find pending ops", self._trials, {"pending.at": {"$lt": cutoff}}, {"search_id": 1, "pending": 1}
        ):
            for op in t.get("pending") or []:
                if op["at"] < cutoff:
                    self._apply_op(t["search_id"], t["_id"], op)
                    repaired += 1
        flt = {
            "status": {"$in": _FINAL_SEARCH},
            "$or": [{"counts.queued": {"$gt": 0}}, {"counts.running": {"$gt": 0}}],
        }
        for s in self._find("find final searches with open trials", self._searches, flt, {"_id": 1}):
            repaired += self._cancel_open_trials(s["_id"])
        flt = {"status": {"$in": _RUNNABLE}, "unfinished": {"$lte": 0}}
        for s in self._find("find finished searches", self._searches, flt, {"_id": 1}):
            unsettled = {"search_id": s["_id"], "pending.0": {"$exists": True}}
            if self._call("find unsettled ops", self._trials.find_one, unsettled, {"_id": 1}) is not None:
                continue  # an op still settling decides between completed and failed (see _settle)
            self._complete_if_done(s["_id"])
            repaired += 1
        return repaired

    # ------------------------------------------------------------------ reading trials
    def get_trial(self, trial_id: str) -> Trial:
        return self._trial(self._find_trial(trial_id))

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
                "list trials", self._trials, flt, _TRIAL_FIELDS, sort=order, skip=offset, limit=limit
            )
            return [self._trial(d) for d in docs]
        # trials without a value (or finish time) come last, in either direction
        has = {**flt, sort: {"$ne": None}}
        docs = self._find(
            "list trials", self._trials, has, _TRIAL_FIELDS, sort=order, skip=offset, limit=limit
        )
        if limit is not None and len(docs) >= limit:
            return [self._trial(d) for d in docs]
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
            _TRIAL_FIELDS,
            sort=[("number", ASCENDING)],
            skip=skip,
            limit=rest,
        )
        return [self._trial(d) for d in (*docs, *nulls)]

    def count_trials(self, search_id: str, *, state: TrialState | str | None = None) -> int:
        flt: Doc = {"search_id": search_id}
        if state is not None:
            flt["state"] = str(TrialState(state))
        return int(self._call("count trials", self._trials.count_documents, flt))

    def get_trials(self, trial_ids: Iterable[str]) -> list[Trial]:
        ids = list(trial_ids)
        out: list[Trial] = []
        for i in range(0, len(ids), 1000):
            docs = self._find("read trials", self._trials, {"_id": {"$in": ids[i : i + 1000]}}, _TRIAL_FIELDS)
            out.extend(self._trial(d) for d in docs)
        return out

    def trial_versions(self, search_id: str) -> dict[str, tuple[int, TrialState]]:
        docs = self._find(
            "read trial versions", self._trials, {"search_id": search_id}, {"version": 1, "state": 1}
        )
        return {d["_id"]: (int(d["version"]), TrialState(d["state"])) for d in docs}

    def trial_rows(self, search_id: str, cursor: Any = None) -> tuple[list[TrialRow], Any]:
        """Versions first (a projection of two fields), then only the changed trials, projected to the
        row's fields by an aggregation that counts the history server-side; the cursor is
        ``{trial_id: version}`` as in the default :meth:`trials_changed_since`."""
        known: dict[str, int] = cursor or {}
        versions = self.trial_versions(search_id)
        changed = [tid for tid, (v, _) in versions.items() if known.get(tid) != v]
        project: Doc = {name: 1 for name in _ROW_FIELDS}
        project["epochs"] = {"$cond": [{"$isArray": "$history"}, {"$size": "$history"}, -1]}
        matches: list[Doc] = (
            [{"search_id": search_id}]
            if cursor is None
            else [{"_id": {"$in": changed[i : i + 1000]}} for i in range(0, len(changed), 1000)]
        )
        out: list[TrialRow] = []
        for match in matches:
            docs = self._call(
                "read trial rows",
                lambda m=match: list(self._trials.aggregate([{"$match": m}, {"$project": project}])),
            )
            for d in docs:
                epochs = d["epochs"]
                if epochs < 0:  # a history stored whole by an older version (one string), or none
                    one = self._find_trial(d["_id"]).get("history")
                    epochs = len(_history_of(one))
                out.append(
                    TrialRow(
                        d["_id"],
                        d["number"],
                        TrialState(d["state"]),
                        d.get("value"),
                        _loads(d.get("vals")),
                        epochs,
                        d.get("started_at"),
                        d.get("finished_at"),
                        d.get("worker_id"),
                        int(d["version"]),
                    )
                )
        next_cursor = {tid: v for tid, (v, _) in versions.items()}
        next_cursor.update((r.id, r.version) for r in out if r.id in next_cursor)
        return out, next_cursor

    # ------------------------------------------------------------------ workers
    def register_worker(self, worker: WorkerInfo) -> None:
        doc = {
            "_id": worker.id,
            "last_seen": worker.last_seen,
            "status": worker.status,
            "current_trial_id": worker.current_trial_id,
            "data": _dumps(worker.to_dict()),
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
        meta = {**info.to_dict(), "meta": _dumps(info.meta), "chunks": seq}
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
        doc = {"_id": owner, "limits": _dumps(limits), "updated_at": now}
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
            running_searches=sum(d["status"] in _RUNNABLE for d in searches),
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
                docs = [self._trial_doc(t) for t in trials]
                self._call("import trials", self._trials.insert_many, docs, ordered=True)
            self._call("import search", self._searches.insert_one, self._search_doc(search))
        except (DuplicateKeyError, BulkWriteError) as exc:
            if self._call("read search", self._searches.find_one, {"_id": search.id}, {"_id": 1}) is None:
                self._call("clear orphan trials", self._trials.delete_many, orphans)
            raise Conflict(
                f"search {search.id} or one of its trial ids already exists in this store"
            ) from exc
