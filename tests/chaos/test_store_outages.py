"""The store unavailable and back, with real processes on a real SQLite file: another process holding
the write lock, the database's folder gone, the disk full. Workers and the API recover on their own; the
API answers reads throughout where SQLite can, and a 503 with a clear message (never a 500) where not."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaoskit import Server, WorkerProc, kill
from invariants import assert_search_consistent, sqlite_integrity

from hyperhive import search_spaces
from hyperhive.models import Search, SearchStatus
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.slow


def _doc(n: int, nap: tuple[float, float] = (0.01, 0.04), name: str = "outage") -> dict[str, Any]:
    return {
        "name": name,
        "max_trials": n,
        "seed": 7,
        "algorithm": "random",
        "objective": {"function": "chaos_objectives:napping_square"},
        "params": {"x": {"uniform": [-2, 2]}, "nap": {"uniform": list(nap)}},
    }


def _search(store: SQLiteStore, n: int) -> Search:
    return store.create_search(search_spaces.validate(_doc(n)))


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def _done(store: SQLiteStore, search_id: str) -> int:
    return store.get_search(search_id).counts.done


class Locker:
    """Another process holding the SQLite write lock (``BEGIN EXCLUSIVE`` plus a write) for ``seconds``."""

    def __init__(self, db: Path, seconds: float) -> None:
        code = (
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN EXCLUSIVE'); c.execute('UPDATE searches SET name = name')\n"
            "print('locked', flush=True); time.sleep(float(sys.argv[2])); c.execute('COMMIT')\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"
        self.since = time.monotonic()

    def wait(self) -> None:
        assert self.proc.wait(60) == 0


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[SQLiteStore, Server]]:
    db = tmp_path / "data" / "store.db"
    store = SQLiteStore(db)
    server = Server(f"sqlite:///{db}", tmp_path)
    server.start()
    try:
        yield store, server
    finally:
        server.kill()
        store.close()


def test_write_lock_held_by_another_process(live: tuple[SQLiteStore, Server], tmp_path: Path) -> None:
    """6 s of someone else's write lock: reads go on (WAL), writes wait for it, nobody fails."""
    store, server = live
    search = _search(store, 40)
    worker = WorkerProc(store.url, tmp_path, "w")
    worker.start()
    try:
        _wait(lambda: _done(store, search.id) >= 5, 60, "first trials")
        locker = Locker(store.path, 6)
        frozen = _done(store, search.id)
        submitted: dict[str, Any] = {}

        def submit() -> None:
            t = time.monotonic()
            r = httpx.post(f"{server.url}/api/searches", json=_doc(2, name="during"), timeout=60)
            submitted.update(status=r.status_code, text=r.text, waited=time.monotonic() - t)

        writer = threading.Thread(target=submit)
        writer.start()
        while time.monotonic() - locker.since < 5:
            for path in (f"/api/searches/{search.id}", f"/api/searches/{search.id}/trials", "/readyz"):
                t = time.monotonic()
                r = httpx.get(server.url + path, timeout=10)
                assert r.status_code == 200, (path, r.status_code, r.text)
                assert time.monotonic() - t < 3, f"{path} waited for the write lock"
            assert _done(store, search.id) <= frozen + 1, "a write got through the lock"
            time.sleep(0.3)
        locker.wait()
        writer.join(60)
        assert submitted["status"] == 201, submitted  # waited for the lock, then went through
        assert submitted["waited"] > 1.5, submitted
        _wait(lambda: store.get_search(search.id).status.is_final, 90, "the search after the lock")
        assert worker.alive()
    finally:
        kill(worker.proc)
    assert store.get_search(search.id).status == SearchStatus.COMPLETED
    assert len(assert_search_consistent(store, search.id)) == 40
    assert sqlite_integrity(store.path) == "ok"


def test_api_answers_503_when_the_lock_outlasts_its_patience(tmp_path: Path) -> None:
    """A write lock held longer than the store waits (``busy_timeout``): a 503 naming the store as
    unavailable, within a bounded time, not a 500 or a request hanging for minutes; then back to 201."""
    import warnings

    from hyperhive.service.app import create_app
    from hyperhive.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    db = tmp_path / "store.db"
    store = SQLiteStore(db, busy_timeout=0.5)
    settings = Settings(store=f"sqlite:///{db}", home=tmp_path / "home", no_auth=True)  # type: ignore[call-arg]
    client = TestClient(
        create_app(settings, store), base_url="http://127.0.0.1", raise_server_exceptions=False
    )
    first = client.post("/api/searches", json=_doc(3))
    assert first.status_code == 201, first.text
    locker = Locker(db, 5)
    t = time.monotonic()
    r = client.post("/api/searches", json=_doc(3))
    waited = time.monotonic() - t
    assert r.status_code == 503, r.text
    assert "unavailable" in r.json()["detail"] and "retry later" in r.json()["detail"]
    assert waited < 4, f"the request hung {waited:.1f}s"
    assert client.get(f"/api/searches/{first.json()['id']}").status_code == 200  # reads go on
    locker.wait()
    again = client.post("/api/searches", json=_doc(3))
    assert again.status_code == 201, again.text
    assert store.count_searches() == 2  # the refused one was not half-written
    store.close()


ROOT_READS_ANYWAY = "running as root, which reads a chmod 000 folder anyway; 'moved' covers the outage"


@pytest.mark.parametrize(
    "how",
    [
        "moved",
        pytest.param("unreadable", marks=pytest.mark.skipif(os.geteuid() == 0, reason=ROOT_READS_ANYWAY)),
    ],
)
def test_store_folder_gone_then_back(live: tuple[SQLiteStore, Server], tmp_path: Path, how: str) -> None:
    """The database's folder moved away (or made unreadable) for 4 s while a worker runs and the API is
    read: no 500, and everything carries on once the folder is back. A worker started meanwhile refuses
    clearly ("no store at ..."), as for a mistyped URL, rather than creating a new empty store."""
    store, server = live
    search = _search(store, 40)
    folder = store.path.parent
    worker = WorkerProc(store.url, tmp_path, "w")
    late = WorkerProc(store.url, tmp_path, "late")
    statuses: dict[int, int] = {}
    worker.start()
    try:
        _wait(lambda: _done(store, search.id) >= 5, 60, "first trials")
        if how == "moved":
            folder.rename(folder.with_name("away"))
        else:
            folder.chmod(0)
        try:
            late.start()  # finds no store: says so clearly (as for a mistyped URL)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 4:
                for path in (f"/api/searches/{search.id}", f"/api/searches/{search.id}/trials", "/readyz"):
                    r = httpx.get(server.url + path, timeout=30)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    assert r.status_code in (200, 503), (path, r.status_code, r.text)
                    if r.status_code == 503 and path != "/readyz":
                        assert "unavailable" in r.json()["detail"], r.text
                time.sleep(0.2)
            assert late.proc is not None and late.proc.wait(30) == 2, late.log()  # a usage error
            assert "no store at" in late.log() and "Traceback" not in late.log(), late.log()
        finally:
            if how == "moved":
                folder.with_name("away").rename(folder)
            else:
                folder.chmod(0o700)
        _wait(lambda: store.get_search(search.id).status.is_final, 90, "the search after the outage")
        assert worker.alive(), worker.log()
        r = httpx.get(f"{server.url}/api/searches/{search.id}", timeout=10)
        assert r.status_code == 200 and r.json()["counts"]["done"] == 40
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        kill(worker.proc)
        kill(late.proc)
    assert len(assert_search_consistent(store, search.id)) == 40
    assert sqlite_integrity(store.path) == "ok"
    print(f"API answers during the outage: {statuses}")


def test_disk_full_while_writing(live: tuple[SQLiteStore, Server], tmp_path: Path) -> None:
    """A worker whose store writes hit a file-size limit (as on a full disk): it logs a clear error and
    keeps its trial, the file stays sound, and the work resumes once the limit is lifted."""
    store, server = live
    search = _search(store, 30)
    wal = store.path.with_name(store.path.name + "-wal")
    sizes = [p.stat().st_size for p in (store.path, wal) if p.exists()]
    worker = WorkerProc(store.url, tmp_path, "w", fsize=max(sizes) + 40_000)
    worker.start()
    try:
        _wait(lambda: "store unreachable" in worker.log(), 60, "the write error")
        stalled = _done(store, search.id)
        assert stalled < 30
        time.sleep(1.5)
        assert _done(store, search.id) == stalled, "writes went on past the limit"
        assert worker.alive(), worker.log()
        assert "disk I/O error" in worker.log() or "disk is full" in worker.log(), worker.log()
        assert sqlite_integrity(store.path) == "ok"
        r = httpx.get(f"{server.url}/api/searches/{search.id}", timeout=10)
        assert r.status_code == 200 and r.json()["counts"]["done"] == stalled
        assert worker.proc is not None
        unlimited = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.prlimit(worker.proc.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))  # space is back
        _wait(lambda: store.get_search(search.id).status.is_final, 90, "the search after the disk filled")
        assert worker.alive(), worker.log()
    finally:
        kill(worker.proc)
    assert store.get_search(search.id).status == SearchStatus.COMPLETED
    assert len(assert_search_consistent(store, search.id)) == 30
    assert sqlite_integrity(store.path) == "ok"
    shutil.rmtree(tmp_path / "home", ignore_errors=True)
