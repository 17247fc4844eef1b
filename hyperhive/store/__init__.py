"""The store: one interface (:class:`Store`), a SQLite and a MongoDB backend, chosen by URL.

Store URLs:
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a plain file path: :class:`SQLiteStore`.
- ``mongodb://...`` or ``mongodb+srv://...``: the MongoDB store (``hyperhive.store.mongo``).
"""

from __future__ import annotations

from hyperhive.errors import BadStoreURL
from hyperhive.policy import Policy
from hyperhive.store.base import Store
from hyperhive.store.sqlite import SQLiteStore
from hyperhive.store.urls import redact_url

__all__ = ["SQLiteStore", "Store", "open_store", "redact_url", "sqlite_path"]


def sqlite_path(url: str) -> str | None:
    """The file path a SQLite store URL names, or ``None`` if the URL is not a SQLite one."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        raise BadStoreURL(f"bad SQLite store URL {url!r}: write sqlite:///relative.db or sqlite:////abs.db")
    if "://" not in url:
        return url
    return None


def open_store(url: str, *, policy: Policy | None = None) -> Store:
    """Open the store a URL names (see the module docstring); :class:`BadStoreURL` for anything else.
    ``policy`` (see :mod:`hyperhive.policy`): what the store's claims and heartbeats apply;
    by default hyperopt's engine and the median pruner, loaded on first use."""
    url = url.strip()
    if not url:
        raise BadStoreURL("empty store URL")
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from hyperhive.store.mongo import MongoStore

        return MongoStore(url, policy=policy)
    path = sqlite_path(url)
    if path is None:
        scheme = url.split("://", 1)[0]
        raise BadStoreURL(
            f"unknown store URL scheme {scheme!r} in {url!r}: use sqlite:///path.db or mongodb://host/db"
        )
    if not path:
        raise BadStoreURL(f"SQLite store URL {url!r} names no file")
    return SQLiteStore(path, policy=policy)
