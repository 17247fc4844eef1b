"""Quota checks for the routes that add to what a user holds (submit, extend, dataset upload).

A check reads the user's usage from the store and the request's additions, then performs the change
while holding a lock per user, so that concurrent requests of one user to this API process cannot pass
a limit together. Several API processes over one store do not share that lock: each may let one request
through at the same moment, so a user can then pass a limit by at most one request per process (the
limits are guards against exhausting a shared server, not billing). Admin tokens are not limited.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hyperhive.errors import QuotaExceeded
from hyperhive.models import TokenInfo
from hyperhive.quotas import Limits, check
from hyperhive.settings import Settings
from hyperhive.store.base import Store

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _owner_lock(owner: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(owner, threading.Lock())


def limits_for(store: Store, settings: Settings, owner: str) -> Limits:
    """The operator's defaults with the admin's override for ``owner`` applied."""
    return settings.quota_defaults.merged(store.get_quota(owner))


@contextmanager
def within_quota(
    store: Store,
    settings: Settings,
    user: TokenInfo,
    *,
    searches: int = 0,
    stored_bytes: int = 0,
    trials: int = 0,
) -> Iterator[None]:
    """Run the block only if what it adds fits the user's quota (:class:`QuotaExceeded` otherwise);
    the block runs under the user's lock."""
    if user.admin:
        yield
        return
    with _owner_lock(user.name):
        check(
            limits_for(store, settings, user.name),
            store.usage(user.name),
            searches=searches,
            stored_bytes=stored_bytes,
            trials=trials,
        )
        yield


def refuse_if_full(store: Store, settings: Settings, user: TokenInfo) -> None:
    """:class:`QuotaExceeded` before an upload is read, when the user's stored bytes are at the limit."""
    if user.admin:
        return
    limit = limits_for(store, settings, user.name).max_stored_bytes
    if limit is not None:
        used = store.usage(user.name).stored_bytes
        if used >= limit:
            raise QuotaExceeded("stored bytes", used, limit)
