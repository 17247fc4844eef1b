"""MongoDB unreachable and back: a loopback TCP proxy (tcpproxy.py) between the server and everything
else (the API and two workers) drops every connection for 10 s in the middle of a search. Meanwhile the
API answers 503 naming the store (never a 500); afterwards the workers and the API carry on by
themselves and the search completes with every invariant of the chaos run.

Needs a MongoDB server: ``HYPERHIVE_TEST_MONGO_URL=mongodb://host:27017`` (a fresh database is used
and dropped). Skipped otherwise: no MongoDB server can run on this project's CI machines, and
mongomock has no network to cut."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from chaoskit import Server, WorkerProc, kill, mongo_server_address, mongo_url, needs_mongo
from invariants import assert_search_consistent
from tcpproxy import TcpProxy

from hyperhive.models import SearchStatus
from hyperhive.store import open_store
from hyperhive.testing import assert_mongo_consistent

pytestmark = [pytest.mark.slow, needs_mongo]

DROP_SECONDS = 10.0


def test_workers_and_api_ride_out_a_10s_mongodb_outage(tmp_path: Path) -> None:
    name = f"hyperhive_outage_{uuid.uuid4().hex[:10]}"
    direct = open_store(mongo_url(name))  # the test's own view, not through the proxy
    proxy = TcpProxy(*mongo_server_address()).start()
    url = mongo_url(name, via=("127.0.0.1", proxy.port))
    server = Server(url, tmp_path)
    workers = [WorkerProc(url, tmp_path, f"w{i}") for i in range(2)]
    statuses: dict[int, int] = {}
    bad: list[str] = []
    try:
        server.start()
        doc = {
            "name": "outage", "max_trials": 40, "seed": 5, "algorithm": "random", "max_retries": 20,
            "objective": {"function": "chaos_objectives:napping_square"},
            "params": {"x": {"uniform": [-2, 2]}, "nap": {"uniform": [0.05, 0.15]}},
        }  # fmt: skip
        r = httpx.post(f"{server.url}/api/searches", json=doc, timeout=30)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while direct.get_search(sid).counts.done < 8:
            assert time.monotonic() < deadline, "no progress before the outage"
            time.sleep(0.1)

        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(timeout=15) as client:
                while not stop.is_set():
                    resp = client.get(f"{server.url}/api/searches/{sid}")
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                    if resp.status_code >= 500 and not (
                        resp.status_code == 503 and "unavailable" in resp.json()["detail"]
                    ):
                        bad.append(f"{resp.status_code} {resp.text[:200]}")
                    stop.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        proxy.drop(DROP_SECONDS)
        poller.start()
        time.sleep(DROP_SECONDS + 1)
        deadline = time.monotonic() + 120
        while (s := direct.get_search(sid)).status != SearchStatus.COMPLETED:
            assert time.monotonic() < deadline, f"not completed after the outage: {s.counts}"
            for w in workers:
                assert w.alive(), f"worker {w.name} exited: {w.log()[-2000:]}"
            time.sleep(0.2)
        stop.set()
        poller.join(30)
    finally:
        for w in workers:
            kill(w.proc)
        server.kill()
        proxy.stop()
    assert not bad, bad
    assert statuses.get(503, 0) >= 1, f"the API never said the store was away: {statuses}"
    assert statuses.get(200, 0) >= 1, f"the API did not come back: {statuses}"
    trials = assert_search_consistent(direct, sid)
    assert len(trials) == 40 and all(t.state.value == "done" for t in trials)
    assert_mongo_consistent(direct, sid)  # type: ignore[arg-type]
    direct.client.drop_database(name)  # type: ignore[attr-defined]
    direct.close()
