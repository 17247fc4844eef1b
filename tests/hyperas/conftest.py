"""Fixtures for the Hyperas tests: a SQLite store in tmp_path, the app under TestClient, and tokens of a
plain user, a user allowed to submit code and an admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore
from hyperhive.store.base import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home")  # type: ignore[call-arg]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "hh.db")
    yield s
    s.close()


@pytest.fixture
def api(settings: Settings, store: Store) -> TestClient:
    from hyperhive.service.app import create_app

    return TestClient(create_app(settings, store), base_url="http://127.0.0.1", raise_server_exceptions=False)


@pytest.fixture
def tokens(store: Store) -> dict[str, dict[str, str]]:
    out = {}
    for name, kw in (("plain", {}), ("coder", {"code": True}), ("root", {"admin": True})):
        _, secret = store.create_token(name, **kw)
        out[name] = {"Authorization": f"Bearer {secret}"}
    return out
