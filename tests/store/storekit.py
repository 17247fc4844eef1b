"""Helpers shared by the store tests (and by other suites that need a store of each backend); the
pieces themselves live in :mod:`hyperhive.testing`.

- ``sqlite``: a real SQLite file in the test's tmp_path.
- ``mongo``: MongoStore on mongomock (no MongoDB server can be installed on these machines), or on a
  real server, in a fresh database dropped afterwards, whenever ``HYPERHIVE_TEST_MONGO_URL`` is set.
"""

from __future__ import annotations

from typing import Any

import pytest

from hyperhive.store import Store
from hyperhive.testing import FakeClock, assert_mongo_consistent, mongo_test_store, sqlite_test_store
from hyperhive.testing import search_document as search_doc

__all__ = ["BACKENDS", "FakeClock", "assert_backend_consistent", "make_store", "search_doc"]

BACKENDS = ["sqlite", "mongo"]


def make_store(backend: str, tmp_path: Any) -> tuple[Store, Any]:
    """A fresh store of ``backend`` and a cleanup callable."""
    if backend == "sqlite":
        return sqlite_test_store(tmp_path)
    pytest.importorskip("mongomock")
    return mongo_test_store()


def assert_backend_consistent(store: Store, search_id: str) -> None:
    """Backend-specific bookkeeping agrees with the trials (MongoDB: counters, budget fields, nothing
    left half-done; SQLite keeps no more than the counts the contract checks already read)."""
    if store.__class__.__name__ == "MongoStore":
        assert_mongo_consistent(store, search_id)  # type: ignore[arg-type]
