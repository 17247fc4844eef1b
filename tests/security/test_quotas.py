"""Issue 8, item 11: per-user quotas on running searches, stored bytes and trials, set by an admin.

Every test goes through the real ASGI app over a real store (SQLite file; MongoDB on mongomock where
marked): an ordinary token is refused with 403 ``quota exceeded: <which>: <used>/<limit>`` and nothing
is stored; admins set the limits (API and CLI) and are not limited themselves.
"""

from __future__ import annotations

import io
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from hyperhive.models import TrialResult
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore, Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def doc(max_trials: int = 2, name: str = "q") -> dict[str, Any]:
    return {
        "name": name,
        "algorithm": "random",
        "max_trials": max_trials,
        "seed": 1,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "loss",
            "mode": "min",
        },
        "params": {"x": {"uniform": [0, 1]}},
    }


def npz(n: int = 12) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.random((n, 8, 8, 1), dtype=np.float32), y_train=np.arange(n) % 3)
    return buf.getvalue()


class App:
    """The app over a store, with tokens for alice, bob and an admin."""

    def __init__(self, store: Store, tmp_path: Path, **settings: Any) -> None:
        self.store = store
        self.settings = Settings(store="sqlite:///unused.db", home=tmp_path / "home", **settings)  # type: ignore[call-arg]
        from hyperhive.service.app import create_app

        self.app = create_app(self.settings, store)
        self.client = TestClient(self.app, raise_server_exceptions=False, base_url="http://127.0.0.1")
        self.alice = self._token("alice")
        self.bob = self._token("bob")
        self.admin = self._token("root", admin=True)

    def _token(self, name: str, admin: bool = False) -> dict[str, str]:
        _, secret = self.store.create_token(name, admin=admin)
        return {"Authorization": f"Bearer {secret}"}

    def submit(self, who: dict[str, str], **kw: Any) -> Any:
        return self.client.post("/api/searches", json=doc(**kw), headers=who)

    def quota(self, owner: str, **limits: Any) -> None:
        r = self.client.put(f"/api/quotas/{owner}", json=limits, headers=self.admin)
        assert r.status_code == 200, r.text


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "hh.db")
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    db = f"hh_{uuid.uuid4().hex[:8]}"
    return MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient())


@pytest.fixture(params=["sqlite", "mongo"])
def hh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    store = make_store(str(request.param), tmp_path)
    yield App(store, tmp_path)
    store.close()


def finish_all(store: Store, search_id: str) -> None:
    while (t := store.claim("w", 30, search_id=search_id)) is not None:
        assert t.lease_token
        store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.5}))


def test_running_searches_quota(hh: App) -> None:
    hh.quota("alice", max_running_searches=2)
    ids = [hh.submit(hh.alice).json()["id"] for _ in range(2)]
    r = hh.submit(hh.alice)
    assert r.status_code == 403
    assert r.json()["detail"] == "quota exceeded: running searches: 2/2 (this request adds 1)"
    assert hh.store.count_searches(owner="alice") == 2, "nothing stored"
    assert hh.submit(hh.bob).status_code == 201, "other users keep their own quota"
    hh.client.post(f"/api/searches/{ids[0]}/cancel", headers=hh.alice)
    assert hh.submit(hh.alice).status_code == 201, "a cancelled search frees its place"
    for _ in range(3):
        assert hh.submit(hh.admin).status_code == 201, "admins are not limited"


def test_trials_quota_on_submit_and_extend(hh: App) -> None:
    hh.quota("alice", max_trials=10)
    sid = hh.submit(hh.alice, max_trials=6).json()["id"]
    r = hh.submit(hh.alice, max_trials=5)
    assert r.status_code == 403 and r.json()["detail"] == "quota exceeded: trials: 6/10 (this request adds 5)"
    assert hh.client.post(f"/api/searches/{sid}/extend", json={"n": 4}, headers=hh.alice).status_code == 200
    r = hh.client.post(f"/api/searches/{sid}/extend", json={"n": 1}, headers=hh.alice)
    assert (
        r.status_code == 403 and r.json()["detail"] == "quota exceeded: trials: 10/10 (this request adds 1)"
    )
    assert hh.store.get_search(sid).max_trials == 10, "the refused extend changed nothing"
    hh.client.delete(f"/api/searches/{sid}", headers=hh.alice)
    assert hh.submit(hh.alice, max_trials=10).status_code == 201, "deleting a search frees its budget"


def test_extend_that_reopens_a_search_counts_as_a_running_search(hh: App) -> None:
    hh.quota("alice", max_running_searches=1)
    done = hh.submit(hh.alice, max_trials=1).json()["id"]
    finish_all(hh.store, done)
    assert hh.store.get_search(done).status == "completed"
    assert hh.submit(hh.alice).status_code == 201
    r = hh.client.post(f"/api/searches/{done}/extend", json={"n": 1}, headers=hh.alice)
    assert r.status_code == 403 and "running searches: 1/1" in r.json()["detail"]
    assert hh.store.get_search(done).status == "completed"


def test_stored_bytes_quota_on_upload(hh: App) -> None:
    data = npz()
    hh.quota("alice", max_stored_bytes=len(data) + len(data) // 2)
    files = {"file": ("d.npz", data, "application/octet-stream")}
    assert hh.client.post("/api/datasets", files=files, headers=hh.alice).status_code == 201
    r = hh.client.post("/api/datasets", files=files, headers=hh.alice)
    assert r.status_code == 403
    assert r.json()["detail"].startswith(f"quota exceeded: stored bytes: {len(data)}/")
    assert len(hh.store.list_datasets(owner="alice")) == 1, "the refused upload is not stored"
    assert not list((hh.settings.home / "uploads").glob("*")), "nor left on the server's disk"
    hh.quota("alice", max_stored_bytes=len(data))  # full: refused before the body is read
    r = hh.client.post("/api/datasets", files=files, headers=hh.alice)
    assert (
        r.status_code == 403
        and r.json()["detail"] == f"quota exceeded: stored bytes: {len(data)}/{len(data)}"
    )
    r = hh.submit(hh.alice)
    assert r.status_code == 403 and "stored bytes" in r.json()["detail"], "a search document takes bytes too"


def test_quota_routes_are_for_admins(hh: App) -> None:
    c = hh.client
    assert c.get("/api/quotas", headers=hh.alice).status_code == 403
    assert c.put("/api/quotas/alice", json={"max_trials": 10**9}, headers=hh.alice).status_code == 403
    assert c.delete("/api/quotas/bob", headers=hh.alice).status_code == 403
    assert c.get("/api/quotas/bob", headers=hh.alice).status_code == 403
    assert c.get("/api/quotas/alice").status_code == 401
    mine = c.get("/api/quotas/alice", headers=hh.alice).json()
    assert mine["override"] is None and mine["usage"] == {
        "running_searches": 0,
        "stored_bytes": 0,
        "trials": 0,
    }
    assert mine["limits"] == {
        "max_running_searches": 100,
        "max_stored_bytes": 50 << 30,
        "max_trials": 1_000_000,
    }
    r = c.put("/api/quotas/alice", json={"max_gpus": 3}, headers=hh.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_gpus"]
    r = c.put("/api/quotas/alice", json={"max_trials": -1}, headers=hh.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "max_trials"]
    hh.quota("alice", max_trials=None, max_running_searches=3)
    got = c.get("/api/quotas/alice", headers=hh.admin).json()
    assert got["override"] == {"max_running_searches": 3, "max_trials": None}
    assert got["limits"]["max_trials"] is None and got["limits"]["max_running_searches"] == 3
    listed = c.get("/api/quotas", headers=hh.admin).json()
    assert listed["overrides"] == {"alice": {"max_running_searches": 3, "max_trials": None}}
    assert c.delete("/api/quotas/alice", headers=hh.admin).status_code == 204
    assert c.delete("/api/quotas/alice", headers=hh.admin).status_code == 404


def test_defaults_come_from_settings(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    hh = App(store, tmp_path, quota_max_running_searches=1, quota_max_trials=None)
    assert hh.submit(hh.alice, max_trials=100_000).status_code == 201
    r = hh.submit(hh.bob, max_trials=1)
    assert r.status_code == 201
    r = hh.submit(hh.bob, max_trials=1)
    assert r.status_code == 403 and r.json()["detail"].startswith("quota exceeded: running searches: 1/1")
    hh.quota("bob", max_running_searches=None)  # an admin lifts it for bob only
    assert hh.submit(hh.bob).status_code == 201
    assert hh.submit(hh.alice).status_code == 403
    store.close()


def test_concurrent_submits_do_not_pass_the_quota(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    hh = App(store, tmp_path)
    hh.quota("alice", max_running_searches=3)
    barrier = threading.Barrier(12)
    codes: list[int] = []

    def one() -> None:
        barrier.wait()
        codes.append(hh.submit(hh.alice).status_code)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] * 3 + [403] * 9
    assert store.count_searches(owner="alice") == 3
    store.close()


def test_cli_sets_and_shows_quotas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hyperhive.service.cli_quota as cli_quota
    from hyperhive.cli import app
    from hyperhive.client import Client

    store = SQLiteStore(tmp_path / "hh.db")
    hh = App(store, tmp_path)
    who = {"headers": hh.admin}

    def make_client(url: str | None, token: str | None) -> Client:
        client = Client("http://testserver")
        client._http = TestClient(
            hh.app, headers=who["headers"], raise_server_exceptions=False, base_url="http://127.0.0.1"
        )
        return client

    monkeypatch.setattr(cli_quota, "make_client", make_client)
    runner = CliRunner()
    r = runner.invoke(
        app, ["quota", "set", "alice", "--max-trials", "5", "--max-running-searches", "unlimited"]
    )
    assert r.exit_code == 0, r.output
    assert store.get_quota("alice") == {"max_trials": 5, "max_running_searches": None}
    r = runner.invoke(app, ["quota", "set", "alice", "--max-trials", "default", "--max-stored-bytes", "1000"])
    assert r.exit_code == 0, r.output
    assert store.get_quota("alice") == {"max_running_searches": None, "max_stored_bytes": 1000}
    r = runner.invoke(app, ["quota", "show", "alice", "--json"])
    assert r.exit_code == 0 and '"max_stored_bytes": 1000' in r.output
    r = runner.invoke(app, ["quota", "set", "alice", "--max-trials", "lots"])
    assert r.exit_code == 1 and "--max-trials: 'lots' is not an integer" in r.output
    who["headers"] = hh.alice  # an ordinary token
    r = runner.invoke(app, ["quota", "set", "bob", "--max-trials", "10"])
    assert r.exit_code == 1 and "admin token" in r.output and store.get_quota("bob") is None
    who["headers"] = hh.admin
    assert runner.invoke(app, ["quota", "reset", "alice"]).exit_code == 0
    assert store.get_quota("alice") is None
    store.close()
