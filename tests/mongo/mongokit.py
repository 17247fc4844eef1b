"""Helpers for the MongoDB store tests: a store on mongomock, or on a real server in a fresh database
(dropped afterwards) whenever ``HYPERHIVE_TEST_MONGO_URL`` is set. The pieces live in
:mod:`hyperhive.testing`."""

from __future__ import annotations

import os
from typing import Any

from hyperhive.search_spaces import validate
from hyperhive.testing import MONGO_URL_VARIABLE, FakeClock, search_document
from hyperhive.testing import assert_mongo_consistent as assert_consistent
from hyperhive.testing import fresh_database_name as unique_db
from hyperhive.testing import mongo_test_store as make_mongo_store

__all__ = [
    "NO_SERVER",
    "REAL_URL",
    "FakeClock",
    "assert_consistent",
    "make_mongo_store",
    "search_spec",
    "unique_db",
]

REAL_URL = os.environ.get(MONGO_URL_VARIABLE)
NO_SERVER = f"needs a real MongoDB server: set {MONGO_URL_VARIABLE}=mongodb://..."


def search_spec(**overrides: Any) -> Any:
    """A small validated function-objective search; keyword arguments replace top-level keys."""
    return validate(search_document(**{"name": "mongo-test", "seed": 7, **overrides}))
