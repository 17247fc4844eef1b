"""Fixtures for the service tests: a SQLite store in tmp_path, the app under TestClient, tokens for two
users and an admin. Helpers live in servicekit.py (a module named ``conftest`` is ambiguous across
test folders)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servicekit import TestClient, Users, bearer, make_client

from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore
from hyperhive.store.base import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home")  # type: ignore[call-arg]


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "hh.db")
    yield s
    s.close()


@pytest.fixture
def client(settings: Settings, store: Store) -> TestClient:
    return make_client(settings, store)


@pytest.fixture
def users(store: Store) -> Users:
    _, a = store.create_token("alice")
    _, b = store.create_token("bob")
    _, adm = store.create_token("root", admin=True)
    return Users(alice=bearer(a), bob=bearer(b), admin=bearer(adm), alice_token=a, admin_token=adm)
