"""Issue 8.10: what Hyperhive writes to disk is readable by its owner only.

The SQLite store (and its WAL/SHM files), ``.hyperhive/``, the token and ``up.json``, the server and worker
logs, the API's upload folder and the workers' dataset cache are created ``0600`` (files) / ``0700``
(folders) under an ordinary ``022`` umask, and files and folders that already exist keep their modes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hyperhive import search_spaces
from hyperhive.models import DatasetInfo
from hyperhive.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default (group and others may read what is created), so the test means something
    whatever umask the test runner has."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _function_doc() -> dict[str, object]:
    return {
        "name": "perm",
        "max_trials": 2,
        "objective": {"function": "hyperhive.demo_objectives:quadratic"},
        "params": {"x": {"uniform": [0, 1]}},
    }


def test_a_new_sqlite_store_its_wal_and_shm_and_its_folders_are_private(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    db = existing / "srv" / ".hyperhive" / "hyperhive.db"
    store = open_store(f"sqlite:///{db}")
    try:
        store.create_search(search_spaces.validate(_function_doc()))
        wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
        assert wal.exists() and shm.exists(), "WAL mode: the files SQLite creates next to the store"
        assert {p.name: mode(p) for p in (db, wal, shm)} == {db.name: 0o600, wal.name: 0o600, shm.name: 0o600}
        assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700
        assert mode(existing) == 0o755, "an existing parent is left alone"
    finally:
        store.close()


def test_existing_files_and_folders_keep_their_modes(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o750)
    db = shared / "team.db"
    open_store(f"sqlite:///{db}").close()
    os.chmod(db, 0o640)  # an operator's choice: a group of worker accounts reads the store
    store = open_store(f"sqlite:///{db}")
    try:
        store.create_search(search_spaces.validate(_function_doc()))
        assert mode(db) == 0o640 and mode(shared) == 0o750
        assert mode(db.with_name("team.db-wal")) == 0o640, "SQLite copies the database file's mode"
    finally:
        store.close()


def _npz() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(
        buf,
        x_train=rng.random((12, 8, 8, 1), dtype=np.float32),
        y_train=np.arange(12) % 3,
        x_val=rng.random((4, 8, 8, 1), dtype=np.float32),
        y_val=np.arange(4) % 3,
    )
    return buf.getvalue()


def test_the_api_upload_folder_is_private(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from hyperhive.service.app import create_app
    from hyperhive.settings import Settings

    home = tmp_path / "home"
    settings = Settings(store=f"sqlite:///{tmp_path / 'api.db'}", home=home, no_auth=True)  # type: ignore[call-arg]
    store = open_store(settings.store)
    try:
        client = TestClient(
            create_app(settings, store), raise_server_exceptions=False, base_url="http://127.0.0.1"
        )
        r = client.post("/api/datasets", files={"file": ("d.npz", _npz())})
        assert r.status_code == 201, r.text
        assert mode(home / "uploads") == 0o700 and mode(home) == 0o700
    finally:
        store.close()


def test_the_workers_dataset_cache_is_private(tmp_path: Path) -> None:
    from hyperhive.workers.datasets import fetch_upload

    data = _npz()
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        info = DatasetInfo(
            id="d1", name="d.npz", owner=None, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
            created_at=0.0, meta={},
        )  # fmt: skip
        store.save_dataset(info, [data])
        data_dir = tmp_path / "cache" / "data"
        path = fetch_upload(store, "d1", data_dir)
        assert path.read_bytes() == data
        assert mode(path) == 0o600
        assert mode(path.parent) == mode(data_dir) == mode(data_dir.parent) == 0o700
    finally:
        store.close()


@pytest.mark.slow
def test_hyperhive_up_creates_its_home_store_token_and_logs_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "up", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    home = tmp_path / ".hyperhive"
    expected = {
        "": 0o700,
        "logs": 0o700,
        "hyperhive.db": 0o600,
        "hyperhive.db-wal": 0o600,
        "hyperhive.db-shm": 0o600,
        "token": 0o600,
        "up.json": 0o600,
        "logs/server.log": 0o600,
        "logs/worker-0.log": 0o600,
    }
    try:
        deadline = time.monotonic() + 60
        while not all((home / name).exists() for name in expected):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, sorted(str(p) for p in home.rglob("*"))
            time.sleep(0.1)
        assert {name: mode(home / name) for name in expected} == expected
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
