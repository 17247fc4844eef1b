"""The embedded store: one SQLite file, shared safely by the API server and many worker processes.

WAL journal, ``synchronous=NORMAL``, one connection per thread, WAL checkpoints from a background
thread (:mod:`hyperhive.store.sqlite_checkpoint`). Every write is one ``BEGIN IMMEDIATE``
transaction, so a writer takes the write lock before reading what it will change (no lock upgrades, no
``SQLITE_BUSY`` deadlocks between readers turned writers); a writer that finds the lock held waits
(``busy_timeout``) and retries with backoff instead of failing with "database is locked".
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hyperhive.errors import Conflict, LeaseLost, NotFound, StoreUnavailable
from hyperhive.models import (
    DEFAULT_LEASE_SECONDS,
    DatasetInfo,
    Search,
    SearchStatus,
    TokenInfo,
    Trial,
    TrialCounts,
    TrialResult,
    TrialState,
    WorkerInfo,
)
from hyperhive.policy import InFlightRule, Policy
from hyperhive.private_files import create_private_file
from hyperhive.quotas import TRIAL_BYTES_ESTIMATE, Usage
from hyperhive.store import json_columns
from hyperhive.store.base import (
    TRIAL_SORT_FIELDS,
    Outcome,
    Store,
    check_reportable,
    epoch_gap,
    extend_refused,
    finished,
    new_id,
    new_lease_token,
    report_outcome,
    reported_again,
    runs_code,
    trial_limit,
    trial_seed,
    worker_lost,
)
from hyperhive.store.codec import dataset_from_dict
from hyperhive.store.rows import TrialHead, TrialRow
from hyperhive.store.rules import Finished, search_error_message, settle
from hyperhive.store.sqlite_checkpoint import AUTOCHECKPOINT_PAGES, Checkpointer

SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    max_trials INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    objective_metric TEXT NOT NULL,
    objective_mode TEXT NOT NULL,
    max_consecutive_failures INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    n_queued INTEGER NOT NULL DEFAULT 0,
    n_running INTEGER NOT NULL DEFAULT 0,
    n_done INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0,
    n_pruned INTEGER NOT NULL DEFAULT 0,
    n_cancelled INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    best_trial_id TEXT,
    best_value REAL,
    error TEXT,
    last_claim_at REAL NOT NULL DEFAULT 0,
    code INTEGER NOT NULL DEFAULT 0
);
-- The fairest runnable search (a claim's slot query) in index order, with no sort of whole rows: a
-- partial index of the runnable searches in the query's ORDER BY (it replaced searches_status, an
-- index on (status, n_running, last_claim_at) that left the query a sort of the rows it found).
DROP INDEX IF EXISTS searches_status;
CREATE INDEX IF NOT EXISTS searches_runnable ON searches(n_running, last_claim_at, created_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS searches_by_status ON searches(status);
CREATE INDEX IF NOT EXISTS searches_created ON searches(created_at);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY,
    search_id TEXT NOT NULL REFERENCES searches(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    config TEXT,
    vals TEXT,
    seed INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    value REAL,
    loss REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    history TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    worker_id TEXT,
    lease_token TEXT,
    lease_expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    info TEXT NOT NULL DEFAULT '{}',
    version INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (search_id, number)
);
CREATE INDEX IF NOT EXISTS trials_lease ON trials(state, lease_expires_at);
CREATE INDEX IF NOT EXISTS trials_search_state ON trials(search_id, state);
CREATE INDEX IF NOT EXISTS trials_search_value ON trials(search_id, value);
-- The change feed reads (search_id, seq) through trials_search_heads, whose first columns they are (an
-- index of its own on them cost every trial write two more index entries).
DROP INDEX IF EXISTS trials_search_seq;
-- Covers trial_heads (a reader of every trial of a search, the dashboard): an index-only scan that
-- never reads the rows' JSON columns.
CREATE INDEX IF NOT EXISTS trials_search_heads
    ON trials(search_id, seq, number, state, value, version, started_at, finished_at, id);
-- A change feed: every insert or version bump of a trial stamps it with the next value of one
-- counter. Writes hold the database's write lock, so stamps are given in commit order and a reader
-- that has seen stamp N has seen every change stamped <= N (see trials_changed_since). The hot
-- statements (a claim's insert, a report) stamp their row themselves
-- (seq = the counter + 1, :data:`_STAMP`), and a trigger moves the counter up to the stamp; a
-- statement that does not is stamped by a trigger that updates the row again.
CREATE TABLE IF NOT EXISTS trial_seq (value INTEGER NOT NULL);
INSERT INTO trial_seq SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM trial_seq);
DROP TRIGGER IF EXISTS trials_seq_on_update;
DROP TRIGGER IF EXISTS trials_seq_on_insert;
CREATE TRIGGER IF NOT EXISTS trials_stamp_update AFTER UPDATE OF version ON trials
WHEN NEW.seq <= OLD.seq BEGIN
    UPDATE trial_seq SET value = value + 1;
    UPDATE trials SET seq = (SELECT value FROM trial_seq) WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS trials_stamped_update AFTER UPDATE OF version ON trials
WHEN NEW.seq > OLD.seq BEGIN
    UPDATE trial_seq SET value = MAX(value, NEW.seq);
END;
CREATE TRIGGER IF NOT EXISTS trials_stamp_insert AFTER INSERT ON trials WHEN NEW.seq <= 0 BEGIN
    UPDATE trial_seq SET value = value + 1;
    UPDATE trials SET seq = (SELECT value FROM trial_seq) WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS trials_stamped_insert AFTER INSERT ON trials WHEN NEW.seq > 0 BEGIN
    UPDATE trial_seq SET value = MAX(value, NEW.seq);
END;
-- Per-epoch history appended by heartbeats (one row per epoch: O(1) written per epoch). While a trial
-- has rows here they are its history (trials.history is then '[]'); a history saved whole (a report,
-- an old-style heartbeat) goes to trials.history and clears the rows.
CREATE TABLE IF NOT EXISTS trial_history (
    trial_id TEXT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (trial_id, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    status TEXT NOT NULL,
    current_trial_id TEXT,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked INTEGER NOT NULL DEFAULT 0,
    hash TEXT NOT NULL UNIQUE,
    code INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS dataset_chunks (
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (dataset_id, seq)
);
-- admins' per-user quota overrides (hyperhive.quotas), and what usage() reads by owner
CREATE TABLE IF NOT EXISTS quotas (
    owner TEXT PRIMARY KEY,
    limits TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_owner ON searches(owner, status);
CREATE INDEX IF NOT EXISTS datasets_owner ON datasets(owner);
"""

_STATES = {s.value: s for s in TrialState}
_TOTAL = "(n_queued + n_running + n_done + n_failed + n_pruned + n_cancelled)"
_RUNNABLE = "status IN ('pending', 'running')"  # the WHERE of the searches_runnable index, word for word
_SELECT_TRIALS = (
    "SELECT trials.*, (SELECT json_group_array(json_array(epoch, json(data))) FROM trial_history"
    " WHERE trial_history.trial_id = trials.id) AS appended FROM trials"
)
"""Trials with their appended epochs, read in the same statement (one snapshot)."""
_SELECT_TRIAL_AND_SEARCH = (
    _SELECT_TRIALS.replace("AS appended FROM trials", "AS appended, searches.* FROM trials")
    + " JOIN searches ON searches.id = trials.search_id WHERE trials.id = ?"
)
"""A trial (as :data:`_SELECT_TRIALS`) followed by its search's columns: a report's one read."""
_BRIEF_COLUMNS = (
    "id, search_id, number, state, config, vals, seed, created_at, updated_at, value, loss, metrics, error,"
    " worker_id, lease_expires_at, attempts, started_at, finished_at, version"
)
"""What :meth:`SQLiteStore.list_trials_brief` reads, in this order."""


_DOCUMENTS_KEPT = 64
"""How many searches' decoded documents :meth:`SQLiteStore._own_search` keeps."""
_EXPIRED = "SELECT id FROM trials WHERE state = 'running' AND lease_expires_at < ?"
"""Running trials whose lease expired before ``?``."""
_ANY_QUEUED = "SELECT 1 FROM trials WHERE state = 'queued' LIMIT 1"
"""Whether any trial is queued (through the trials_lease index): a claim runs the full queued-trial
query only then."""
_PROPOSALS = 3
"""How many suggestions one claim may make for slots that other claimers take first."""
_CHEAP_PROPOSAL_SECONDS = 0.005
"""A suggestion that took less is made again when its slot was lost; a costlier one is not."""
_MISSED = object()
_STAMP = "(SELECT value FROM trial_seq) + 1"
"""A trial's next change-feed stamp, set by the statement that changes it (see the schema's triggers)."""


_dumps = json_columns.dumps
_dumps_clean = json_columns.dumps_clean


def _loads(s: str | None) -> Any:
    return None if s is None else json_columns.loads(s)


_SEARCH_STATUSES = {s.value: s for s in SearchStatus}


def _search_from_row(row: sqlite3.Row | dict[str, Any], document: dict[str, Any]) -> Search:
    """The search of a ``searches`` row (or a dict of one) with its decoded ``document``: built from the
    columns (SQLite gives their Python types: the schema's INTEGER and REAL affinities)."""
    return Search(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        status=_SEARCH_STATUSES[row["status"]],
        document=document,
        algorithm=row["algorithm"],
        max_trials=row["max_trials"],
        seed=row["seed"],
        objective_metric=row["objective_metric"],
        objective_mode=row["objective_mode"],
        max_consecutive_failures=row["max_consecutive_failures"],
        max_retries=row["max_retries"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        counts=TrialCounts(
            queued=row["n_queued"],
            running=row["n_running"],
            done=row["n_done"],
            failed=row["n_failed"],
            pruned=row["n_pruned"],
            cancelled=row["n_cancelled"],
        ),
        consecutive_failures=row["consecutive_failures"],
        best_trial_id=row["best_trial_id"],
        best_value=row["best_value"],
        error=row["error"],
    )


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class SQLiteStore(Store):
    """The SQLite backend. ``path`` is the database file (created with its folder if missing)."""

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, policy: Policy | None = None
    ) -> None:
        super().__init__(policy)
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout = busy_timeout
        self.lock_retries = 50
        """How many times a statement that met a lock (after ``busy_timeout``) is tried before
        :class:`StoreUnavailable`."""
        self._local = threading.local()
        self._all_conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        """Every open connection with the thread it belongs to (connections are per thread)."""
        self._conns_lock = threading.Lock()
        self._checkpointer = Checkpointer(self._conn)
        self._documents: dict[tuple[str, float], tuple[str, Any]] = {}
        """Decoded search documents for :meth:`_own_search`, by (id, created_at)."""
        try:
            create_private_file(self.path)  # 0600 in a 0700 folder if new; SQLite gives WAL/SHM the same mode
        except OSError as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc.strerror or exc}") from exc
        self._retry(lambda: self._conn().executescript(SCHEMA))
        for table in ("tokens", "searches"):
            self._retry(lambda table=table: self._add_code_column(table))

    def _add_code_column(self, table: str) -> None:
        """Stores made before tokens and searches had ``code``: add the column (0 for every old row: no
        old search holds a script, no old token may submit one)."""
        conn = self._conn()
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "code" not in columns:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN code INTEGER NOT NULL DEFAULT 0")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
                conn.row_factory = sqlite3.Row
                self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
                conn.execute(
                    f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}"
                )  # the checkpointer's backstop
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._conns_lock:
                self._close_orphans()
                self._all_conns.append((threading.current_thread(), conn))
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (under ``_conns_lock``). A thread pool
        retires idle threads and starts new ones (the API's: after 10 s idle), and each new thread opens
        its own connection: kept, the old ones would hold two file descriptors and their page cache each
        for as long as the store is open (a server under bursty load ran out of descriptors)."""
        alive = []
        for thread, conn in self._all_conns:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                with suppress(sqlite3.Error):
                    conn.close()
        self._all_conns = alive

    def _unavailable(self, exc: sqlite3.OperationalError) -> Exception:
        """What escapes when the database stays locked past the retries or cannot be read or written
        (locked, I/O error, disk full, read-only, ...): :class:`StoreUnavailable`, as the contract says,
        never the driver's error. A mistake in a statement (``SQLITE_ERROR``) is a bug: it stays itself."""
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_ERROR:
            return exc
        return StoreUnavailable(f"SQLite store {self.path}: {exc}")

    def _retry(self, fn: Any) -> Any:
        """``fn()``, retried while the database is locked, ``lock_retries`` times but for no longer than
        ``busy_timeout`` in all (each try may already wait that long): a lock someone else holds for
        minutes is a :class:`StoreUnavailable` (an API 503) after ``busy_timeout``, not a request that
        hangs for ``lock_retries`` x ``busy_timeout``."""
        delay = 0.005
        attempts = self.lock_retries
        start = time.monotonic()
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                out_of_time = time.monotonic() - start >= self.busy_timeout
                if not _is_locked(exc) or i == attempts - 1 or out_of_time:
                    failure = self._unavailable(exc)
                    if failure is exc:
                        raise
                    raise failure from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its first statement."""
        conn = self._conn()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = self._unavailable(exc) if isinstance(exc, sqlite3.OperationalError) else exc
            if failure is exc:
                raise
            raise failure from exc
        else:
            self._retry(lambda: conn.execute("COMMIT"))
            self._checkpointer.committed()

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        rows: list[sqlite3.Row] = self._retry(lambda: conn.execute(sql, tuple(args)).fetchall())
        return rows

    def close(self) -> None:
        self._checkpointer.close()
        with self._conns_lock:
            for _, conn in self._all_conns:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()
        self._local = threading.local()

    def ping(self) -> None:
        try:
            self._read("SELECT 1")
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc

    # ------------------------------------------------------------------ row decoding
    @staticmethod
    def _search(row: sqlite3.Row) -> Search:
        return _search_from_row(row, json.loads(row["document"]))

    @staticmethod
    def _trial(row: sqlite3.Row | dict[str, Any]) -> Trial:
        """The trial of a :data:`_SELECT_TRIALS` row (or a dict of one), built from its columns."""
        try:
            appended = row["appended"]
        except (IndexError, KeyError):  # a row without the appended epochs
            appended = None
        history = _loads(row["history"])
        if appended and appended != "[]":
            history = [entry for _, entry in sorted(json.loads(appended), key=lambda p: p[0])]
        return Trial(
            id=row["id"],
            search_id=row["search_id"],
            number=row["number"],
            state=_STATES[row["state"]],
            config=_loads(row["config"]),
            vals=_loads(row["vals"]),
            seed=row["seed"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            value=row["value"],
            loss=row["loss"],
            metrics=_loads(row["metrics"]) or {},
            history=history or [],
            error=row["error"],
            worker_id=row["worker_id"],
            lease_token=row["lease_token"],
            lease_expires_at=row["lease_expires_at"],
            attempts=row["attempts"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            info=_loads(row["info"]) or {},
            version=row["version"],
        )

    @staticmethod
    def _append_epochs(conn: sqlite3.Connection, trial_id: str, k: int, new: list[dict[str, Any]]) -> None:
        """``history[:k] + new`` with one row per new epoch (inside a write transaction)."""
        [top] = conn.execute(
            "SELECT MAX(epoch) FROM trial_history WHERE trial_id = ?", (trial_id,)
        ).fetchone()
        if top is None:  # no rows yet: the history is the column's (usually empty)
            [column] = conn.execute("SELECT history FROM trials WHERE id = ?", (trial_id,)).fetchone()
            base = json.loads(column)
            if k > len(base):
                raise epoch_gap(trial_id, k, len(base))
            if base:  # saved whole before: move the kept part into rows, once
                rows = [(trial_id, i, _dumps(e)) for i, e in enumerate(base[:k])]
                conn.executemany("INSERT INTO trial_history (trial_id, epoch, data) VALUES (?,?,?)", rows)
                conn.execute("UPDATE trials SET history = '[]' WHERE id = ?", (trial_id,))
        elif k > top + 1:
            raise epoch_gap(trial_id, k, top + 1)
        conn.executemany(
            "INSERT OR REPLACE INTO trial_history (trial_id, epoch, data) VALUES (?,?,?)",
            [(trial_id, k + i, _dumps(e)) for i, e in enumerate(new)],
        )
        conn.execute("DELETE FROM trial_history WHERE trial_id = ? AND epoch >= ?", (trial_id, k + len(new)))

    def _get_trial_in(self, conn: sqlite3.Connection, trial_id: str) -> Trial:
        row = conn.execute(f"{_SELECT_TRIALS} WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise NotFound("trial", trial_id)
        return self._trial(row)

    def _get_search_in(self, conn: sqlite3.Connection, search_id: str) -> Search:
        row = conn.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            raise NotFound("search", search_id)
        return self._search(row)

    def _own_search(self, row: sqlite3.Row | dict[str, Any]) -> Search:
        """The search of ``row`` for the store's own reading (a report's outcome and settlement, the
        policy's suggestion): its document decoded once per process and shared between such reads
        (a search's document never changes; callers of :meth:`get_search` get their own copy)."""
        key = (row["id"], row["created_at"])
        raw = row["document"]
        cached = self._documents.get(key)
        if cached is None or cached[0] != raw:
            if len(self._documents) >= _DOCUMENTS_KEPT:
                self._documents.pop(next(iter(self._documents)), None)
            cached = self._documents[key] = (raw, json.loads(raw))
        return _search_from_row(row, cached[1])

    # ------------------------------------------------------------------ searches
    def _insert_search(self, search: Search) -> None:
        with self._write() as conn:
            self._insert_search_in(conn, search)

    def _insert_search_in(self, conn: sqlite3.Connection, s: Search) -> None:
        c = s.counts
        conn.execute(
            "INSERT INTO searches (id, name, owner, status, document, algorithm, max_trials, seed,"
            " objective_metric, objective_mode, max_consecutive_failures, max_retries, created_at,"
            " updated_at, started_at, finished_at, n_queued, n_running, n_done, n_failed, n_pruned,"
            " n_cancelled, consecutive_failures, best_trial_id, best_value, error, code)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                s.id, s.name, s.owner, str(s.status), _dumps(s.document), s.algorithm, s.max_trials,
                s.seed, s.objective_metric, s.objective_mode, s.max_consecutive_failures, s.max_retries,
                s.created_at, s.updated_at, s.started_at, s.finished_at, c.queued, c.running, c.done,
                c.failed, c.pruned, c.cancelled, s.consecutive_failures, s.best_trial_id, s.best_value,
                s.error, int(runs_code(s.document)),
            ),
        )  # fmt: skip

    def get_search(self, search_id: str) -> Search:
        rows = self._read("SELECT * FROM searches WHERE id = ?", (search_id,))
        if not rows:
            raise NotFound("search", search_id)
        return self._search(rows[0])

    @staticmethod
    def _search_filters(status: Any, name: str | None, owner: str | None) -> tuple[str, list[Any]]:
        where, args = [], []
        if status is not None:
            where.append("status = ?")
            args.append(str(SearchStatus(status)))
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def list_searches(
        self,
        *,
        status: SearchStatus | str | None = None,
        name: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Search]:
        where, args = self._search_filters(status, name, owner)
        rows = self._read(
            f"SELECT * FROM searches{where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [self._search(r) for r in rows]

    def count_searches(
        self, *, status: SearchStatus | str | None = None, name: str | None = None, owner: str | None = None
    ) -> int:
        where, args = self._search_filters(status, name, owner)
        return int(self._read(f"SELECT COUNT(*) FROM searches{where}", args)[0][0])

    def _cancel_open_trials(self, conn: sqlite3.Connection, search_id: str, now: float) -> None:
        """Cancel every queued/running trial of the search and move the counts (inside a write)."""
        n = conn.execute(
            "UPDATE trials SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,"
            " finished_at = ?, updated_at = ?, version = version + 1"
            " WHERE search_id = ? AND state IN ('queued', 'running')",
            (now, now, search_id),
        ).rowcount
        if n:
            conn.execute(
                "UPDATE searches SET n_cancelled = n_cancelled + n_queued + n_running, n_queued = 0,"
                " n_running = 0 WHERE id = ?",
                (search_id,),
            )

    def cancel_search(self, search_id: str) -> Search:
        now = self.clock()
        with self._write() as conn:
            search = self._get_search_in(conn, search_id)
            if not search.status.is_final:
                self._cancel_open_trials(conn, search_id, now)
                conn.execute(
                    "UPDATE searches SET status = 'cancelled', finished_at = ?, updated_at = ? WHERE id = ?",
                    (now, now, search_id),
                )
            return self._get_search_in(conn, search_id)

    def extend_search(self, search_id: str, n: int, *, limit: int | None = None) -> Search:
        if n < 1:
            raise ValueError("extend needs n >= 1")
        limit = trial_limit(limit)
        now = self.clock()
        with self._write() as conn:  # the write lock is held from here: the check below cannot go stale
            search = self._get_search_in(conn, search_id)
            if search.status == SearchStatus.CANCELLED:
                raise Conflict(f"search {search_id} is cancelled and cannot be extended")
            if search.max_trials + n > limit:
                raise extend_refused(search_id, search.max_trials, n, limit)
            reopen = search.status in (SearchStatus.COMPLETED, SearchStatus.FAILED)
            changed = conn.execute(
                "UPDATE searches SET max_trials = max_trials + ?, updated_at = ?,"
                " status = CASE WHEN ? THEN 'running' ELSE status END,"
                " consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures END,"
                " finished_at = CASE WHEN ? THEN NULL ELSE finished_at END,"
                " error = CASE WHEN ? THEN NULL ELSE error END WHERE id = ? AND max_trials + ? <= ?",
                (n, now, reopen, reopen, reopen, reopen, search_id, n, limit),
            ).rowcount
            if not changed:  # unreachable while the transaction holds the lock; the limit is in the SQL too
                raise extend_refused(search_id, search.max_trials, n, limit)
            return self._get_search_in(conn, search_id)

    def delete_search(self, search_id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM searches WHERE id = ?", (search_id,)).rowcount == 0:
                raise NotFound("search", search_id)
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
        sql, args = self._queued_query(search_id, allow_code)
        if not self._read(sql, args):  # cheap read first: most claims find no queued trial
            return None
        with self._write() as conn:
            return self._claim_queued_in(conn, sql, args, worker_id, lease_seconds, now)

    @staticmethod
    def _queued_query(search_id: str | None, allow_code: bool) -> tuple[str, list[Any]]:
        """The oldest queued trial of a runnable search."""
        only = " AND t.search_id = ?" if search_id else ""
        if not allow_code:
            only += " AND s.code = 0"
        sql = (
            "SELECT t.id FROM trials t JOIN searches s ON s.id = t.search_id"
            f" WHERE t.state = 'queued' AND s.{_RUNNABLE}{only} ORDER BY t.updated_at, t.number LIMIT 1"
        )
        return sql, [search_id] if search_id else []

    def _claim_queued_in(
        self,
        conn: sqlite3.Connection,
        sql: str,
        args: list[Any],
        worker_id: str,
        lease_seconds: float,
        now: float,
    ) -> Trial | None:
        """The queued trial of ``sql`` (:meth:`_queued_query`) made ours, inside a write transaction."""
        if conn.execute(_ANY_QUEUED).fetchone() is None:  # an index probe: most claims find none queued
            return None
        row = conn.execute(sql, args).fetchone()
        if row is None:
            return None
        token = new_lease_token()
        conn.execute(
            "UPDATE trials SET state = 'running', worker_id = ?, lease_token = ?, lease_expires_at = ?,"
            " attempts = attempts + 1, started_at = ?, updated_at = ?, version = version + 1"
            " WHERE id = ?",
            (worker_id, token, now + lease_seconds, now, now, row["id"]),
        )
        trial = self._get_trial_in(conn, row["id"])
        conn.execute(
            "UPDATE searches SET n_queued = n_queued - 1, n_running = n_running + 1,"
            " last_claim_at = ?, updated_at = ? WHERE id = ?",
            (now, now, trial.search_id),
        )
        self._busy_in(conn, worker_id, trial.id, now)
        return trial

    def _claim_new_slot(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        sql, args = self._slot_query(search_id, allow_code)
        if not self._read(sql, args):
            return None
        trial: Trial | None = self._take_slot(sql, args, worker_id, lease_seconds, now, None)
        return trial

    def _claim_new_suggested(
        self,
        worker_id: str,
        lease_seconds: float,
        now: float,
        search_id: str | None,
        *,
        allow_code: bool = True,
    ) -> Trial | None:
        """Suggest for the slot the fairest search offers now, outside the write lock (a TPE suggestion
        must not hold up the other workers' writes), then take the slot in one transaction that saves
        the suggestion with the trial when the slot taken is the one it was made for (one worker:
        always); else the trial is inserted without config and :meth:`claim` suggests for it."""
        sql, args = self._slot_query(search_id, allow_code)
        for attempt in range(_PROPOSALS):
            rows = self._read(sql, args)
            if not rows:
                return None
            t0 = time.perf_counter()
            proposal, rule = self._propose(rows[0])
            # a cheap suggestion that lost its slot to another claimer is made again for the next one;
            # an expensive one (TPE on a long history) is not thrown away: its trial goes config-less.
            # One that nearly duplicates a trial started meanwhile (the policy's rule) is made again.
            last = attempt + 1 == _PROPOSALS
            again = not last and time.perf_counter() - t0 < _CHEAP_PROPOSAL_SECONDS
            trial = self._take_slot(
                sql,
                args,
                worker_id,
                lease_seconds,
                now,
                proposal,
                or_without=not again,
                clash=None if last else rule,
            )
            if trial is not _MISSED:
                return trial
        raise AssertionError("unreachable: the last attempt takes the slot with or without its proposal")

    @staticmethod
    def _slot_query(search_id: str | None, allow_code: bool) -> tuple[str, list[Any]]:
        """The fairest runnable search with a slot left, with its ``total`` of trials."""
        only = " AND id = ?" if search_id else ""
        if not allow_code:
            only += " AND code = 0"
        # one search: its row by id; else searches_runnable, which the planner would not pick without
        # statistics (it took searches_by_status and sorted the rows)
        indexed = "" if search_id else " INDEXED BY searches_runnable"
        sql = (
            f"SELECT *, {_TOTAL} AS total FROM searches{indexed} WHERE {_RUNNABLE} AND {_TOTAL} < max_trials"
            f"{only} ORDER BY n_running, last_claim_at, created_at LIMIT 1"
        )
        return sql, [search_id] if search_id else []

    def _take_slot(
        self,
        sql: str,
        args: list[Any],
        worker_id: str,
        lease_seconds: float,
        now: float,
        proposal: tuple[tuple[str, int], dict[str, list[Any]], dict[str, Any]] | None,
        *,
        or_without: bool = True,
        clash: InFlightRule | None = None,
    ) -> Any:
        """One transaction: the slot of ``sql``'s search taken and its running trial inserted, with the
        ``proposal``'s vals and config when it was made for this search and slot; else without config
        (``or_without``) or nothing taken and :data:`_MISSED` returned. None: no slot. A proposal for
        the slot that ``clash``es with a trial in flight is not used: nothing is taken (:data:`_MISSED`)."""
        with self._write() as conn:
            return self._take_slot_in(
                conn, sql, args, worker_id, lease_seconds, now, proposal, or_without=or_without, clash=clash
            )

    def _take_slot_in(
        self,
        conn: sqlite3.Connection,
        sql: str,
        args: list[Any],
        worker_id: str,
        lease_seconds: float,
        now: float,
        proposal: tuple[tuple[str, int], dict[str, list[Any]], dict[str, Any]] | None,
        *,
        or_without: bool = True,
        suggest_here: bool = False,
        clash: InFlightRule | None = None,
    ) -> Any:
        """:meth:`_take_slot` inside a write transaction. ``suggest_here``: a slot the proposal was not
        made for gets its suggestion now, inside the transaction, when it reads no history (a random
        search's costs well under a millisecond; one that raises leaves the trial config-less, and
        :meth:`claim`'s suggestion then fails it)."""
        row = conn.execute(sql, args).fetchone()
        if row is None:
            return None
        number = int(row["total"])
        vals = config = None
        if proposal is not None and proposal[0] == (row["id"], number):
            if clash is not None and self._clashes_in(conn, row["id"], None, proposal[1], clash):
                return _MISSED
            vals, config = proposal[1], proposal[2]
        elif proposal is not None and not or_without:
            return _MISSED
        elif suggest_here and self._history_free(search := self._own_search(row)):
            made, _ = self._propose(row, search)
            if made is not None:
                vals, config = made[1], made[2]
        trial = Trial(
            id=new_id(),
            search_id=row["id"],
            number=number,
            state=TrialState.RUNNING,
            config=config,
            vals=vals,
            seed=trial_seed(int(row["seed"]), number),
            created_at=now,
            updated_at=now,
            worker_id=worker_id,
            lease_token=new_lease_token(),
            lease_expires_at=now + lease_seconds,
            attempts=1,
            started_at=now,
        )
        self._insert_trial_in(conn, trial, suggested=True)
        if row["status"] == "running" and row["started_at"] is not None:
            # status left out when it stays: assigning it rewrites its index entries (owner, status) too
            conn.execute(
                "UPDATE searches SET n_running = n_running + 1, last_claim_at = ?, updated_at = ?"
                " WHERE id = ?",
                (now, now, trial.search_id),
            )
        else:
            conn.execute(
                "UPDATE searches SET n_running = n_running + 1, status = 'running',"
                " started_at = COALESCE(started_at, ?), last_claim_at = ?, updated_at = ? WHERE id = ?",
                (now, now, now, trial.search_id),
            )
        self._busy_in(conn, worker_id, trial.id, now)
        return trial

    def _propose(
        self, row: sqlite3.Row, search: Search | None = None
    ) -> tuple[tuple[tuple[str, int], dict[str, list[Any]], dict[str, Any]] | None, InFlightRule | None]:
        """The policy's suggestion for the next slot of the search in ``row`` (read with its ``total``;
        ``search``: that row already decoded): ``((search id, slot), vals, config)``, or None when it
        raised (the claim then takes the slot without a config and suggests again, failing the trial if
        the suggestion still raises); and the policy's rule against trials in flight for the search."""
        number = int(row["total"])
        if search is None:
            search = self._own_search(row)  # the extra column is ignored
        slot = Trial(
            id="",
            search_id=search.id,
            number=number,
            state=TrialState.RUNNING,
            config=None,
            vals=None,
            seed=trial_seed(search.seed, number),
            created_at=0.0,
            updated_at=0.0,
        )
        suggester = self.policy.suggester
        try:
            vals, config = suggester.suggest(self, search, slot)
            rule = suggester.in_flight_rule(search)
        except Exception:
            return None, None
        return ((search.id, number), vals, config), rule

    @staticmethod
    def _clashes_in(
        conn: sqlite3.Connection,
        search_id: str,
        trial_id: str | None,
        vals: dict[str, list[Any]],
        clash: InFlightRule,
    ) -> bool:
        """Whether ``vals`` clashes with the suggestions of the search's other trials in flight (running,
        or queued again with their values: hyperopt's pending jobs), as the write transaction ``conn``
        sees them (nobody can start another meanwhile)."""
        others = [
            json.loads(r[0])
            for r in conn.execute(
                "SELECT vals FROM trials WHERE search_id = ? AND state IN ('running', 'queued')"
                " AND vals IS NOT NULL AND id IS NOT ?",
                (search_id, trial_id),
            )
        ]
        return bool(others) and clash(vals, others)

    @staticmethod
    def _busy_in(conn: sqlite3.Connection, worker_id: str, trial_id: str, now: float) -> None:
        """The claimer's worker row (if registered) says busy with the trial: in the claim's transaction."""
        conn.execute(
            "UPDATE workers SET last_seen = ?, status = 'busy', current_trial_id = ? WHERE id = ?",
            (now, trial_id, worker_id),
        )

    def _claimed_by(self, worker_id: str, trial: Trial) -> None:
        """Nothing: both claim transactions wrote the worker row (:meth:`_busy_in`)."""

    def _insert_trial_in(self, conn: sqlite3.Connection, t: Trial, *, suggested: bool = False) -> None:
        """Insert ``t`` (``suggested``: a claim's new trial, whose config and vals the policy made: written
        by :func:`~hyperhive.store.json_columns.dumps_clean`)."""
        dump = _dumps_clean if suggested else _dumps
        conn.execute(
            "INSERT INTO trials (id, search_id, number, state, config, vals, seed, created_at, updated_at,"
            " value, loss, metrics, history, error, worker_id, lease_token, lease_expires_at, attempts,"
            " started_at, finished_at, info, version, seq)"
            f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,{_STAMP})",
            (
                t.id, t.search_id, t.number, str(t.state),
                None if t.config is None else dump(t.config),
                None if t.vals is None else dump(t.vals),
                t.seed, t.created_at, t.updated_at, t.value, t.loss,
                _dumps(t.metrics) if t.metrics else "{}", _dumps(t.history) if t.history else "[]",
                t.error, t.worker_id, t.lease_token, t.lease_expires_at, t.attempts, t.started_at,
                t.finished_at, _dumps(t.info) if t.info else "{}", t.version,
            ),
        )  # fmt: skip

    def _set_suggestion(
        self,
        trial_id: str,
        lease_token: str,
        vals: dict[str, list[Any]],
        config: dict[str, Any],
        *,
        clash: InFlightRule | None = None,
    ) -> Trial | None:
        now = self.clock()
        with self._write() as conn:
            if clash is not None:
                row = conn.execute("SELECT search_id FROM trials WHERE id = ?", (trial_id,)).fetchone()
                if row is not None and self._clashes_in(conn, row[0], trial_id, vals, clash):
                    return None
            n = conn.execute(
                "UPDATE trials SET vals = ?, config = ?, updated_at = ?, version = version + 1"
                " WHERE id = ? AND state = 'running' AND lease_token = ?",
                (_dumps(vals), _dumps(config), now, trial_id, lease_token),
            ).rowcount
            if n == 0:
                self._get_trial_in(conn, trial_id)
                raise LeaseLost(f"trial {trial_id} is no longer held by this lease")
            return self._get_trial_in(conn, trial_id)

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
        with self._write() as conn:
            n = conn.execute(
                "UPDATE trials SET lease_expires_at = ?, history = COALESCE(?, history), updated_at = ?,"
                " version = version + 1 WHERE id = ? AND state = 'running' AND lease_token = ?",
                (now + lease_seconds, None if history is None else _dumps(history), now, trial_id,
                 lease_token),
            ).rowcount  # fmt: skip
            if n == 0:
                trial = self._get_trial_in(conn, trial_id)
                raise LeaseLost(f"trial {trial_id} is not held by this lease (state {trial.state})")
            if history is not None:
                conn.execute("DELETE FROM trial_history WHERE trial_id = ?", (trial_id,))
            if epochs is not None:
                self._append_epochs(conn, trial_id, *epochs)
            return self._get_trial_in(conn, trial_id)

    def _finish_in(
        self,
        conn: sqlite3.Connection,
        trial: Trial,
        outcome: Outcome,
        now: float,
        search: Search | None = None,
    ) -> None:
        """Make a running trial final and update its search (inside a write transaction; ``search``:
        its row as read in this transaction)."""
        state, value, error, history = outcome.state, outcome.value, outcome.error, outcome.history
        conn.execute(
            "UPDATE trials SET state = ?, value = ?, loss = ?, metrics = ?, history = COALESCE(?, history),"
            " error = ?, info = ?, lease_token = NULL, lease_expires_at = NULL, finished_at = ?,"
            f" updated_at = ?, version = version + 1, seq = {_STAMP} WHERE id = ?",
            (
                str(state), value, outcome.loss, _dumps_clean(outcome.metrics),
                None if history is None else _dumps_clean(history), error,
                _dumps_clean({**trial.info, **outcome.info}),
                now, now, trial.id,
            ),
        )  # fmt: skip
        if history is not None:  # the whole history now lives in the column
            conn.execute("DELETE FROM trial_history WHERE trial_id = ?", (trial.id,))
        if search is None:
            search = self._get_search_in(conn, trial.search_id)
        finished = Finished(
            state,
            trial.id,
            value,
            error,
            search_error_message(trial.number, error) if outcome.fails_search else None,
        )
        settled = settle(search, finished, last_error=lambda: self._last_error_in(conn, search.id))
        c = settled.counters
        conn.execute(
            "UPDATE searches SET n_queued = ?, n_running = ?, n_done = ?, n_failed = ?, n_pruned = ?,"
            " n_cancelled = ?, consecutive_failures = ?, best_trial_id = ?, best_value = ?, updated_at = ?"
            " WHERE id = ?",
            (
                c.counts.queued, c.counts.running, c.counts.done, c.counts.failed, c.counts.pruned,
                c.counts.cancelled, c.consecutive_failures, c.best_trial_id, c.best_value, now, search.id,
            ),
        )  # fmt: skip
        verdict = settled.verdict
        if verdict is None:
            return
        if verdict.cancel_open:
            self._cancel_open_trials(conn, search.id, now)
        conn.execute(
            "UPDATE searches SET status = ?, finished_at = ?, error = COALESCE(?, error) WHERE id = ?",
            (str(verdict.status), now, verdict.error, search.id),
        )

    @staticmethod
    def _last_error_in(conn: sqlite3.Connection, search_id: str) -> str | None:
        """The error of the search's most recently finished failed trial."""
        row = conn.execute(
            "SELECT error FROM trials WHERE search_id = ? AND state = 'failed'"
            " ORDER BY finished_at DESC, number DESC LIMIT 1",
            (search_id,),
        ).fetchone()
        return None if row is None else row[0]

    def _report(self, trial_id: str, lease_token: str, result: TrialResult) -> Trial:
        """The whole report in one write transaction: the trial and its search read, the outcome
        computed and written, the search settled."""
        now = self.clock()
        with self._write() as conn:
            return self._report_in(conn, trial_id, lease_token, result, now)

    def _report_in(
        self, conn: sqlite3.Connection, trial_id: str, lease_token: str, result: TrialResult, now: float
    ) -> Trial:
        """:meth:`_report` inside a write transaction; the trial returned is built from what was read
        and written (:func:`~hyperhive.store.base.finished`), not read back."""
        cursor = conn.execute(_SELECT_TRIAL_AND_SEARCH, (trial_id,))
        row = cursor.fetchone()
        if row is None:
            raise NotFound("trial", trial_id)
        names = [d[0] for d in cursor.description]
        n = names.index("appended") + 1  # the trial's columns, then its search's
        trial = self._trial(dict(zip(names[:n], row[:n], strict=True)))
        if trial.state.is_final:
            return reported_again(trial, lease_token)
        if trial.state != TrialState.RUNNING or trial.lease_token != lease_token:
            raise LeaseLost(f"trial {trial_id} is not held by this lease (state {trial.state})")
        search = self._own_search(dict(zip(names[n:], row[n:], strict=True)))
        outcome = report_outcome(search, lease_token, result)
        self._finish_in(conn, trial, outcome, now, search)
        return finished(trial, outcome, now)

    def report_and_claim(
        self,
        trial_id: str,
        lease_token: str,
        result: TrialResult,
        worker_id: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        search_id: str | None = None,
        allow_code: bool = False,
    ) -> tuple[Trial, Trial | None]:
        """The report and the next claim in ONE write transaction: the report, the lease sweep, a queued
        trial or the fairest search's next slot, the worker row. A slot whose suggestion reads no history
        (random search) gets it inside the transaction (well under a millisecond); one whose suggestion
        reads the history (TPE) is inserted config-less and suggested for after the commit, as
        :meth:`claim` does for a slot its proposal lost, so the suggestion sees the result just reported
        and does not hold the write lock."""
        check_reportable(result)
        slot_sql, slot_args = self._slot_query(search_id, allow_code)
        queued_sql, queued_args = self._queued_query(search_id, allow_code)
        now = self.clock()
        with self._write() as conn:
            reported = self._report_in(conn, trial_id, lease_token, result, now)
            self._requeue_expired_in(conn, now)
            claimed = self._claim_queued_in(conn, queued_sql, queued_args, worker_id, lease_seconds, now)
            if claimed is None:
                claimed = self._take_slot_in(
                    conn, slot_sql, slot_args, worker_id, lease_seconds, now, None, suggest_here=True
                )
        if claimed is not None and claimed.config is None:
            try:
                claimed = self._suggest_for(claimed)
            except (LeaseLost, NotFound):  # lost while suggesting: claim another one
                claimed = self.claim(worker_id, lease_seconds, search_id=search_id, allow_code=allow_code)
        return reported, claimed

    def _finish_trial(self, trial_id: str, lease_token: str, outcome: Outcome, now: float) -> Trial:
        with self._write() as conn:
            trial = self._get_trial_in(conn, trial_id)
            if trial.state.is_final and trial.info.get("reported_token") == outcome.info.get(
                "reported_token"
            ):
                return trial
            if trial.state != TrialState.RUNNING or trial.lease_token != lease_token:
                raise LeaseLost(f"trial {trial_id} is not held by this lease (state {trial.state})")
            self._finish_in(conn, trial, outcome, now)
            return self._get_trial_in(conn, trial_id)

    def release(self, trial_id: str, lease_token: str) -> Trial:
        now = self.clock()
        with self._write() as conn:
            trial = self._get_trial_in(conn, trial_id)
            if trial.state != TrialState.RUNNING or trial.lease_token != lease_token:
                raise LeaseLost(f"trial {trial_id} is not held by this lease (state {trial.state})")
            conn.execute(
                "UPDATE trials SET state = 'queued', worker_id = NULL, lease_token = NULL,"
                " lease_expires_at = NULL, attempts = MAX(attempts - 1, 0), updated_at = ?,"
                " version = version + 1 WHERE id = ?",
                (now, trial_id),
            )
            conn.execute(
                "UPDATE searches SET n_running = n_running - 1, n_queued = n_queued + 1, updated_at = ?"
                " WHERE id = ?",
                (now, trial.search_id),
            )
            return self._get_trial_in(conn, trial_id)

    def requeue_expired(self) -> int:
        now = self.clock()
        if not self._read(_EXPIRED + " LIMIT 1", (now,)):
            return 0
        with self._write() as conn:
            return self._requeue_expired_in(conn, now)

    def _requeue_expired_in(self, conn: sqlite3.Connection, now: float) -> int:
        """:meth:`requeue_expired` inside a write transaction."""
        changed = 0
        if conn.execute(_EXPIRED + " LIMIT 1", (now,)).fetchone() is None:  # an index seek, no sorter
            return 0
        for row in conn.execute(_EXPIRED + " ORDER BY lease_expires_at, number", (now,)).fetchall():
            trial = self._get_trial_in(conn, row["id"])
            if trial.state != TrialState.RUNNING:
                continue  # cancelled when an earlier trial of this sweep failed its search
            search = self._get_search_in(conn, trial.search_id)
            if trial.attempts <= search.max_retries:
                conn.execute(
                    "UPDATE trials SET state = 'queued', worker_id = NULL, lease_token = NULL,"
                    " lease_expires_at = NULL, updated_at = ?, version = version + 1 WHERE id = ?",
                    (now, trial.id),
                )
                conn.execute(
                    "UPDATE searches SET n_running = n_running - 1, n_queued = n_queued + 1,"
                    " updated_at = ? WHERE id = ?",
                    (now, search.id),
                )
            else:
                self._finish_in(conn, trial, worker_lost(trial, search.max_retries), now)
            changed += 1
        return changed

    # ------------------------------------------------------------------ reading trials
    def get_trial(self, trial_id: str) -> Trial:
        rows = self._read(f"{_SELECT_TRIALS} WHERE id = ?", (trial_id,))
        if not rows:
            raise NotFound("trial", trial_id)
        return self._trial(rows[0])

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
        page, args = _trial_page(search_id, state, sort, descending, limit, offset)
        return [self._trial(r) for r in self._read(f"{_SELECT_TRIALS} {page}", args)]

    def list_trials_brief(
        self,
        search_id: str,
        *,
        state: TrialState | str | None = None,
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trial]:
        """One narrow SELECT (no history, appended epochs or info); the page's JSON columns are decoded
        in one parse."""
        page, args = _trial_page(search_id, state, sort, descending, limit, offset)
        rows = self._read(f"SELECT {_BRIEF_COLUMNS} FROM trials {page}", args)
        decoded = json.loads(
            "[" + ",".join(f"[{r[4] or 'null'},{r[5] or 'null'},{r[11]}]" for r in rows) + "]"
        )
        return [
            Trial(
                id=r[0],
                search_id=r[1],
                number=r[2],
                state=_STATES[r[3]],
                config=config,
                vals=vals,
                seed=r[6],
                created_at=r[7],
                updated_at=r[8],
                value=r[9],
                loss=r[10],
                metrics=metrics,
                error=r[12],
                worker_id=r[13],
                lease_expires_at=r[14],
                attempts=r[15],
                started_at=r[16],
                finished_at=r[17],
                version=r[18],
            )
            for r, (config, vals, metrics) in zip(rows, decoded, strict=True)
        ]

    def count_trials(self, search_id: str, *, state: TrialState | str | None = None) -> int:
        if state is None:
            return int(self._read("SELECT COUNT(*) FROM trials WHERE search_id = ?", (search_id,))[0][0])
        sql = "SELECT COUNT(*) FROM trials WHERE search_id = ? AND state = ?"
        return int(self._read(sql, (search_id, str(TrialState(state))))[0][0])

    def get_trials(self, trial_ids: Iterable[str]) -> list[Trial]:
        ids = list(trial_ids)
        out: list[Trial] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.extend(self._trial(r) for r in self._read(f"{_SELECT_TRIALS} WHERE id IN ({marks})", chunk))
        return out

    def trial_versions(self, search_id: str) -> dict[str, tuple[int, TrialState]]:
        rows = self._read("SELECT id, version, state FROM trials WHERE search_id = ?", (search_id,))
        return {r[0]: (r[1], _STATES[r[2]]) for r in rows}

    def trials_changed_since(self, search_id: str, cursor: Any) -> tuple[list[Trial], Any]:
        """Read through the change feed: one indexed range query, whatever the search's size."""
        since = int(cursor) if cursor is not None else -1
        rows = self._read(
            f"{_SELECT_TRIALS} WHERE search_id = ? AND seq > ? ORDER BY seq", (search_id, since)
        )
        return [self._trial(r) for r in rows], (rows[-1]["seq"] if rows else since)

    _ROW_COLUMNS = (
        "SELECT id, number, state, value, vals, started_at, finished_at, worker_id, version, seq,"
        " json_array_length(history) + (SELECT COUNT(*) FROM trial_history"
        " WHERE trial_history.trial_id = trials.id) AS epochs FROM trials"
    )

    @staticmethod
    def _rows(rows: list[sqlite3.Row]) -> list[TrialRow]:
        states = {str(s): s for s in TrialState}
        # every row's vals in one parse (a column holds JSON text or NULL): far fewer decoder calls
        vals = json.loads("[" + ",".join(r[4] or "null" for r in rows) + "]")
        return [
            TrialRow(r[0], r[1], states[r[2]], r[3], v, r[10], r[5], r[6], r[7], r[8])
            for r, v in zip(rows, vals, strict=True)
        ]

    def trial_rows(self, search_id: str, cursor: Any = None) -> tuple[list[TrialRow], Any]:
        """One indexed range query of the change feed reading only the row's columns (the epochs are
        counted by SQLite, not decoded); the cursor is the last ``seq`` seen."""
        since = int(cursor) if cursor is not None else -1
        rows = self._read(
            f"{self._ROW_COLUMNS} WHERE search_id = ? AND seq > ? ORDER BY seq", (search_id, since)
        )
        return self._rows(rows), (rows[-1][9] if rows else since)

    def trial_heads(self, search_id: str, cursor: Any = None) -> tuple[list[TrialHead], Any]:
        """The change feed's range query over plain columns only (no JSON, no history); the cursor is
        the last ``seq`` seen."""
        since = int(cursor) if cursor is not None else -1
        conn = self._conn()
        sql = (
            "SELECT id, number, state, value, started_at, finished_at, version, seq"
            " FROM trials WHERE search_id = ? AND seq > ? ORDER BY seq"
        )

        def read() -> list[tuple[Any, ...]]:
            cur = conn.cursor()
            cur.row_factory = None  # plain tuples, not sqlite3.Row: this reads every trial at once
            return cur.execute(sql, (search_id, since)).fetchall()

        rows = self._retry(read)
        states = {str(s): s for s in TrialState}
        make = tuple.__new__  # TrialHead's own __new__ is a Python function: a third slower here
        out = [make(TrialHead, (r[0], r[1], states[r[2]], r[3], r[4], r[5], r[6])) for r in rows]
        return out, (rows[-1][7] if rows else since)

    def trial_rows_of(self, trial_ids: Iterable[str]) -> list[TrialRow]:
        ids = list(dict.fromkeys(trial_ids))
        out: list[TrialRow] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.extend(self._rows(self._read(f"{self._ROW_COLUMNS} WHERE id IN ({marks})", chunk)))
        return out

    # ------------------------------------------------------------------ workers
    def register_worker(self, worker: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers (id, last_seen, status, current_trial_id, data)"
                " VALUES (?,?,?,?,?)",
                (
                    worker.id,
                    worker.last_seen,
                    worker.status,
                    worker.current_trial_id,
                    _dumps(worker.to_dict()),
                ),
            )

    def touch_worker(self, worker_id: str, *, status: str, current_trial_id: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE workers SET last_seen = ?, status = ?, current_trial_id = ? WHERE id = ?",
                (self.clock(), status, current_trial_id, worker_id),
            )

    def list_workers(self) -> list[WorkerInfo]:
        out = []
        for r in self._read("SELECT * FROM workers ORDER BY last_seen DESC"):
            d = json.loads(r["data"])
            d.update(last_seen=r["last_seen"], status=r["status"], current_trial_id=r["current_trial_id"])
            out.append(WorkerInfo(**d))
        return out

    # ------------------------------------------------------------------ tokens
    def _insert_token(self, info: TokenInfo, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tokens (id, name, admin, created_at, last_used_at, revoked, hash, code)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (info.id, info.name, int(info.admin), info.created_at, None, 0, token_hash, int(info.code)),
            )

    @staticmethod
    def _token(r: sqlite3.Row) -> TokenInfo:
        return TokenInfo(
            id=r["id"],
            name=r["name"],
            admin=bool(r["admin"]),
            created_at=r["created_at"],
            last_used_at=r["last_used_at"],
            revoked=bool(r["revoked"]),
            code=bool(r["code"]),
        )

    def _token_by_hash(self, token_hash: str) -> TokenInfo | None:
        rows = self._read("SELECT * FROM tokens WHERE hash = ?", (token_hash,))
        return self._token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenInfo]:
        return [self._token(r) for r in self._read("SELECT * FROM tokens ORDER BY created_at")]

    def _touch_token(self, token_id: str, now: float) -> None:
        with self._write() as conn:
            conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))

    def revoke_token(self, token_id: str) -> None:
        with self._write() as conn:
            if conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount == 0:
                raise NotFound("token", token_id)

    # ------------------------------------------------------------------ datasets
    def save_dataset(self, info: DatasetInfo, chunks: Iterable[bytes]) -> DatasetInfo:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO datasets (id, name, owner, size, sha256, created_at, meta)"
                " VALUES (?,?,?,?,?,?,?)",
                (info.id, info.name, info.owner, info.size, info.sha256, info.created_at, _dumps(info.meta)),
            )
            for seq, chunk in enumerate(chunks):
                conn.execute(
                    "INSERT INTO dataset_chunks (dataset_id, seq, data) VALUES (?,?,?)", (info.id, seq, chunk)
                )
        return info

    @staticmethod
    def _dataset(r: sqlite3.Row) -> DatasetInfo:
        return dataset_from_dict(dict(r))

    def get_dataset(self, dataset_id: str) -> DatasetInfo:
        rows = self._read("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        if not rows:
            raise NotFound("dataset", dataset_id)
        return self._dataset(rows[0])

    def list_datasets(self, *, owner: str | None = None) -> list[DatasetInfo]:
        if owner is None:
            rows = self._read("SELECT * FROM datasets ORDER BY created_at DESC")
        else:
            rows = self._read("SELECT * FROM datasets WHERE owner = ? ORDER BY created_at DESC", (owner,))
        return [self._dataset(r) for r in rows]

    def read_dataset(self, dataset_id: str) -> Iterator[bytes]:
        self.get_dataset(dataset_id)
        n = self._read("SELECT COUNT(*) FROM dataset_chunks WHERE dataset_id = ?", (dataset_id,))[0][0]
        for seq in range(n):
            rows = self._read(
                "SELECT data FROM dataset_chunks WHERE dataset_id = ? AND seq = ?", (dataset_id, seq)
            )
            yield bytes(rows[0][0])

    def delete_dataset(self, dataset_id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount == 0:
                raise NotFound("dataset", dataset_id)

    # ------------------------------------------------------------------ quotas
    def get_quota(self, owner: str) -> dict[str, int | None] | None:
        rows = self._read("SELECT limits FROM quotas WHERE owner = ?", (owner,))
        return dict(json.loads(rows[0][0])) if rows else None

    def _put_quota(self, owner: str, limits: dict[str, int | None], now: float) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO quotas (owner, limits, updated_at) VALUES (?,?,?) ON CONFLICT(owner)"
                " DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at",
                (owner, _dumps(limits), now),
            )

    def delete_quota(self, owner: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM quotas WHERE owner = ?", (owner,)).rowcount == 0:
                raise NotFound("quota", owner)

    def list_quotas(self) -> dict[str, dict[str, int | None]]:
        return {
            r[0]: dict(json.loads(r[1]))
            for r in self._read("SELECT owner, limits FROM quotas ORDER BY owner")
        }

    def usage(self, owner: str) -> Usage:
        [row] = self._read(
            f"SELECT COALESCE(SUM(CASE WHEN {_RUNNABLE} THEN 1 ELSE 0 END), 0), COALESCE(SUM(max_trials), 0),"
            f" COALESCE(SUM({_TOTAL}), 0),"
            " COALESCE(SUM(LENGTH(document)), 0) FROM searches WHERE owner = ?",
            (owner,),
        )
        [(dataset_bytes,)] = self._read(
            "SELECT COALESCE(SUM(size), 0) FROM datasets WHERE owner = ?", (owner,)
        )
        running, trials, started, document_bytes = (int(v) for v in row)
        stored = int(dataset_bytes) + document_bytes + started * TRIAL_BYTES_ESTIMATE
        return Usage(running_searches=running, stored_bytes=stored, trials=trials)

    # ------------------------------------------------------------------ import
    def _insert_imported(self, search: Search, trials: list[Trial]) -> None:
        """One transaction: all of it or nothing; :class:`Conflict` if an id exists already."""
        try:
            with self._write() as conn:
                self._insert_search_in(conn, search)
                for t in trials:
                    self._insert_trial_in(conn, t)
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"search {search.id} or one of its trial ids already exists in this store"
            ) from exc


def _trial_page(
    search_id: str,
    state: TrialState | str | None,
    sort: str,
    descending: bool,
    limit: int | None,
    offset: int,
) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT ... OFFSET`` of one page of a search's trials, and its arguments:
    trials without a ``sort`` value last, ties by number."""
    if sort not in TRIAL_SORT_FIELDS:
        raise ValueError(f"sort must be one of {', '.join(TRIAL_SORT_FIELDS)}")
    where, args = "search_id = ?", [search_id]
    if state is not None:
        where += " AND state = ?"
        args.append(str(TrialState(state)))
    direction = "DESC" if descending else "ASC"
    # number is NOT NULL: ordering by it alone lets SQLite walk the (search_id, number) index
    order = f"number {direction}" if sort == "number" else f"{sort} IS NULL, {sort} {direction}, number"
    return f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", [*args, -1 if limit is None else limit, offset]
