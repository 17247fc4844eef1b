"""Fixtures for the MongoDB store tests (mongomock here; a real server with HYPERHIVE_TEST_MONGO_URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mongokit import FakeClock, make_mongo_store

from hyperhive.store.mongo import MongoStore


@pytest.fixture
def mstore() -> Iterator[MongoStore]:
    store, cleanup = make_mongo_store()
    try:
        yield store
    finally:
        cleanup()


@pytest.fixture
def mclock(mstore: MongoStore) -> FakeClock:
    clock = FakeClock()
    mstore.clock = clock
    return clock
