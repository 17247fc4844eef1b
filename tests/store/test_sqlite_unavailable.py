"""The contract's last word on errors: a SQLite store that stays locked or cannot be written raises
StoreUnavailable (what the worker retries and the API answers 503), never sqlite3's own errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from storekit import search_doc

from hyperhive.errors import StoreUnavailable
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore


def test_a_store_locked_past_its_retries_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db", busy_timeout=0.05)
    store.lock_retries = 2
    search = store.create_search(validate(search_doc()))
    holder = sqlite3.connect(tmp_path / "hh.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock, and readers out
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.claim("w", 60)
        with pytest.raises(StoreUnavailable, match=r"hh\.db"):
            store.cancel_search(search.id)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.claim("w", 60) is not None, "usable again once the lock is gone"
    store.close()


def test_a_store_it_cannot_write_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    store._conn().execute("PRAGMA query_only = ON")  # as a read-only file or a full disk would refuse
    with pytest.raises(StoreUnavailable, match="readonly"):
        store.create_search(validate(search_doc()))
    store._conn().execute("PRAGMA query_only = OFF")
    assert store.list_searches() == [], "the refused write was rolled back"
    store.close()


def test_a_mistake_in_a_statement_is_not_mistaken_for_an_outage(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store._read("SELECT * FROM nowhere")
    store.close()
