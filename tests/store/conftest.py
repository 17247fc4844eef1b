"""Fixtures for the store contract suite: one ``store`` fixture parametrised over every backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from storekit import BACKENDS, FakeClock, make_store

from hyperhive.store import Store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Any) -> Iterator[Store]:
    s, cleanup = make_store(backend, tmp_path)
    try:
        yield s
    finally:
        cleanup()


@pytest.fixture
def clock(store: Store) -> FakeClock:
    c = FakeClock()
    store.clock = c
    return c
