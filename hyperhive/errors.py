"""Errors the store and the engine raise; the service maps each to one HTTP status."""

from __future__ import annotations


class HyperhiveError(Exception):
    """Base of every error Hyperhive raises on purpose."""


class NotFound(HyperhiveError, LookupError):
    """No such search, trial, token, worker or dataset (HTTP 404)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(HyperhiveError):
    """The operation does not fit the record's current state, e.g. extending a cancelled search (409)."""


class LeaseLost(HyperhiveError):
    """A heartbeat or report came with a lease token that is not the trial's current one.

    The trial was requeued after its lease expired, handed to another worker, or cancelled. The caller
    must drop the trial and not retry the report: nothing it sends is counted.
    """


class LimitExceeded(HyperhiveError, ValueError):
    """A change would pass a hard limit, e.g. extending a search past the largest trial budget (HTTP 422
    naming ``field``). ``current`` is the value before the change, ``limit`` the most allowed."""

    def __init__(self, field: str, msg: str, *, current: int, limit: int) -> None:
        super().__init__(msg)
        self.field = field
        self.current = current
        self.limit = limit


class QuotaExceeded(HyperhiveError):
    """A user's quota (running searches, stored bytes, trials) would be passed (HTTP 403). The message
    reads ``quota exceeded: <which>: <used>/<limit>``."""

    def __init__(self, which: str, used: int, limit: int, *, adding: int = 0) -> None:
        more = f" (this request adds {adding})" if adding else ""
        super().__init__(f"quota exceeded: {which}: {used}/{limit}{more}")
        self.which = which
        self.used = used
        self.limit = limit
        self.adding = adding


class StoreUnavailable(HyperhiveError):
    """The store cannot be reached right now (network, server down, election). Safe to retry later."""


class BadStoreURL(HyperhiveError, ValueError):
    """A store URL that names no known backend or is malformed."""
