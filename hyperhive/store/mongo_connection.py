"""The MongoDB store's connection: URL parsing, the client, and retries through connection loss.

``mongodb://`` or ``mongodb+srv://`` store URLs; the database is the URL's path (default ``hyperhive``).
Writes use write concern ``majority`` unless the URL sets ``w``, retryable writes and reads are on,
and server selection gives up after 10 s unless the URL sets ``serverSelectionTimeoutMS``.

Connection loss and elections
    The driver retries a failed write once (retryable writes). Beyond that, every call is retried with
    exponential backoff for up to ``retry_seconds`` (default 30 s, longer than an election) on
    ``ConnectionFailure`` (``AutoReconnect``, ``NotPrimaryError``, ``ServerSelectionTimeoutError``, ...)
    and retryable server errors, then :class:`~hyperhive.errors.StoreUnavailable` naming the hosts is
    raised, so a worker's own retry loop handles longer outages. Retried writes are safe: every one is
    conditional or deduplicated, and a report whose write reached the server before the connection
    broke is recognised by its reported token.

Tests run against mongomock, whose ``find_one_and_update`` is a find followed by an update: each call on
a mongomock client holds a lock here (:func:`_client_lock`), which gives it the single-document
atomicity of a server.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import pymongo
from pymongo.errors import ConfigurationError, ConnectionFailure, InvalidURI, OperationFailure
from pymongo.write_concern import WriteConcern

from hyperhive.errors import BadStoreURL, StoreUnavailable
from hyperhive.store.urls import redact_url, scrub

T = TypeVar("T")
Doc = dict[str, Any]

DEFAULT_DATABASE = "hyperhive"
DEFAULT_SERVER_SELECTION_MS = 10_000
DEFAULT_CONNECT_MS = 10_000
# server error codes that mean "try again" (host unreachable or not found, network timeout, shutting
# down, not primary, primary stepped down, interrupted by a step-down, ...)
_RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
_AUTH_FAILED = 18

_CLIENT_LOCKS: dict[int, threading.RLock] = {}
_CLIENT_LOCKS_GUARD = threading.Lock()


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


class MongoConnection:
    """A client and its database, and the retry loop every database call goes through
    (:meth:`_run`). :class:`~hyperhive.store.mongo.MongoStore` builds on it."""

    client_factory: Callable[..., Any] = pymongo.MongoClient
    """What makes the client when none is given (tests put a mongomock factory here)."""

    def _open(self, url: str, *, database: str | None, client: Any, retry_seconds: float) -> None:
        """Validate ``url`` (:class:`BadStoreURL`) and set up the client and the database (the server is
        contacted by the first call through :meth:`_run`)."""
        self._url = url.strip()
        self.url = redact_url(self._url)
        """The URL with its password masked: safe to log (the store keeps the real one to itself)."""
        parsed = parse_mongo_url(self._url)
        self.hosts = _hosts_text(parsed)
        self.username: str | None = parsed.get("username")
        self.retry_seconds = retry_seconds
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

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def ping(self) -> None:
        """One attempt, no retries: a health probe answers now (within the server selection timeout)."""
        self._run("ping", functools.partial(self.db.command, "ping"), retry=False)
