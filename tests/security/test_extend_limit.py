"""Issue 8, item 7: concurrent ``extend`` calls never take a search past the trial limit.

The limit is part of the store's atomic update (SQLite: inside the write transaction and in the
UPDATE's WHERE; MongoDB: the update's filter), so 20 threads (and, on SQLite, several processes) racing
to extend one search add exactly as many slots as fit, and every other call is refused with
``LimitExceeded`` (the API's 422 naming ``n``).
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from extendkit import extend_in_process

from hyperhive.errors import LimitExceeded
from hyperhive.search_spaces import MAX_TRIALS_LIMIT, validate
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore, Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DOC = {
    "name": "extend-race",
    "algorithm": "random",
    "max_trials": 1,
    "seed": 1,
    "objective": {
        "function": "hyperhive.demo_objectives:quadratic",
        "metric": "loss",
        "mode": "min",
    },
    "params": {"x": {"uniform": [0, 1]}},
}
STEP = 24_999  # 1 + 4 * STEP fits under 100,000; a fifth does not


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "hh.db")
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    db = f"hh_{uuid.uuid4().hex[:8]}"
    return MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient())


@pytest.fixture(params=["sqlite", "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(str(request.param), tmp_path)
    yield s
    s.close()


def race(store: Store, search_id: str, calls: int, n: int) -> tuple[int, list[LimitExceeded]]:
    """``calls`` threads extend at once (a barrier lines them up); returns (accepted, refusals)."""
    barrier = threading.Barrier(calls)
    ok: list[int] = []
    refused: list[LimitExceeded] = []
    other: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            store.extend_search(search_id, n)
            ok.append(1)
        except LimitExceeded as exc:
            refused.append(exc)
        except BaseException as exc:  # pragma: no cover - reported below
            other.append(exc)

    threads = [threading.Thread(target=one) for _ in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other, other
    return len(ok), refused


def test_twenty_threads_never_pass_the_limit(store: Store) -> None:
    search = store.create_search(validate(DOC), owner="mallory")
    accepted, refused = race(store, search.id, 20, STEP)
    after = store.get_search(search.id)
    assert after.max_trials <= MAX_TRIALS_LIMIT
    assert accepted == 4 and len(refused) == 16, "exactly the extends that fit were accepted"
    assert after.max_trials == 1 + 4 * STEP
    assert all(e.field == "n" and e.limit == MAX_TRIALS_LIMIT for e in refused)
    assert "at most 100000" in str(refused[0])


def test_refused_extend_changes_nothing_and_a_fitting_one_still_works(store: Store) -> None:
    search = store.create_search(validate(DOC), owner="mallory")
    with pytest.raises(LimitExceeded, match=r"n <= 99999"):
        store.extend_search(search.id, MAX_TRIALS_LIMIT)
    assert store.get_search(search.id).max_trials == 1
    assert store.extend_search(search.id, MAX_TRIALS_LIMIT - 1).max_trials == MAX_TRIALS_LIMIT
    with pytest.raises(LimitExceeded):
        store.extend_search(search.id, 1)
    with pytest.raises(LimitExceeded, match="at most 10 "):
        store.extend_search(store.create_search(validate(DOC)).id, 10, limit=10)


def test_sqlite_processes_never_pass_the_limit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hh.db")
    search = store.create_search(validate(DOC), owner="mallory")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=extend_in_process, args=(str(tmp_path / "hh.db"), search.id, 3, STEP, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    accepted = sum(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert accepted == 4
    assert store.get_search(search.id).max_trials == 1 + 4 * STEP
    store.close()


def test_api_answers_422_naming_n_for_every_refused_concurrent_extend(tmp_path: Path) -> None:
    from hyperhive.service.app import create_app

    store = SQLiteStore(tmp_path / "hh.db")
    settings = Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home")  # type: ignore[call-arg]
    _, secret = store.create_token("mallory")
    headers = {"Authorization": f"Bearer {secret}"}
    client = TestClient(
        create_app(settings, store), raise_server_exceptions=False, base_url="http://127.0.0.1"
    )
    sid = client.post("/api/searches", json=DOC, headers=headers).json()["id"]
    barrier = threading.Barrier(20)
    codes: list[int] = []
    problems: list[dict[str, Any]] = []

    def one() -> None:
        barrier.wait()
        r = client.post(f"/api/searches/{sid}/extend", json={"n": STEP}, headers=headers)
        codes.append(r.status_code)
        if r.status_code == 422:
            problems.extend(r.json()["detail"])

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 4 + [422] * 16
    assert {p["path"] for p in problems} == {"n"} and all("at most 100000" in p["msg"] for p in problems)
    assert client.get(f"/api/searches/{sid}", headers=headers).json()["max_trials"] == 1 + 4 * STEP
    store.close()
