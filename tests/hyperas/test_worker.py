"""Hyperas trials on real workers: only --allow-code workers claim them; each runs in a child process with
a time limit, a memory limit and a temporary working directory; data() runs once per worker and script."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive import search_spaces as ss
from hyperhive.models import SearchStatus, TrialState
from hyperhive.store import SQLiteStore
from hyperhive.store.base import Store
from hyperhive.workers.daemon import Worker, WorkerOptions
from hyperhive.workers.hyperas_run import CodeLimits

HEAD = """\
import os
import numpy as np
from hyperopt import Trials, STATUS_OK, tpe
from hyperas import optim
from hyperas.distributions import choice, uniform

"""
DATA = """
def data():
    with open(os.environ["HH_TEST_CALLS"], "a") as f:
        f.write("data\\n")
    x = np.arange(12, dtype="float32").reshape(6, 2)
    return x, x, x, x
"""
MAIN = """

if __name__ == '__main__':
    raise SystemExit("the __main__ block ran")
"""


def script(body: str) -> str:
    model = "\ndef create_model(x_train, y_train, x_test, y_test):\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    return HEAD + DATA + model + MAIN


def make_stores(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    yield "sqlite", SQLiteStore(tmp_path / "hh.db")
    mongomock = pytest.importorskip("mongomock")
    from hyperhive.store.mongo import MongoStore

    db = f"hh_{uuid.uuid4().hex[:8]}"
    yield "mongo", MongoStore(f"mongodb://localhost/{db}", database=db, client=mongomock.MongoClient())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SQLiteStore(tmp_path / "hh.db")
    yield s
    s.close()


@pytest.fixture(autouse=True)
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data-calls"
    monkeypatch.setenv("HH_TEST_CALLS", str(path))
    return path


def submit(store: Store, body: str, max_trials: int = 2, **doc: Any) -> str:
    spec = ss.validate(
        {"name": "hyperas-test", "max_trials": max_trials, "seed": 3, "script": script(body), **doc}
    )
    return store.create_search(spec, owner="alice").id


def work(store: Store, tmp_path: Path, *, allow_code: bool = True, **limits: Any) -> Worker:
    options = WorkerOptions(
        burst=True,
        lease_seconds=30.0,
        heartbeat_seconds=5.0,
        data_dir=tmp_path / "data",
        retry_max_delay=0.2,
        allow_code=allow_code,
        code_limits=CodeLimits(**{"time_limit": 60.0, "memory_mb": 4096, **limits}),
    )
    worker = Worker(store, options)
    worker.work()
    return worker


def test_claim_skips_code_searches_without_allow_code_on_both_backends(tmp_path: Path) -> None:
    for backend, s in make_stores(tmp_path):
        try:
            sid = submit(s, "return {'loss': {{uniform(0, 1)}}, 'status': STATUS_OK}\n")
            assert s.claim("plain", 30) is None, backend
            assert s.claim("plain", 30, allow_code=False) is None, backend
            trial = s.claim("coder", 30, allow_code=True)
            assert trial is not None and trial.search_id == sid, backend
            assert trial.lease_token is not None
            s.release(trial.id, trial.lease_token)  # back to the queue: still not for plain workers
            assert s.claim("plain", 30) is None, backend
            again = s.claim("coder", 30, allow_code=True)
            assert again is not None and again.id == trial.id, backend
            s.release(again.id, again.lease_token or "")
            objective = {"function": "hyperhive.demo_objectives:quadratic"}
            plain = ss.validate(
                {
                    "name": "plain",
                    "max_trials": 1,
                    "objective": objective,
                    "params": {"x": {"uniform": [0, 1]}},
                }
            )
            pid = s.create_search(plain, owner="alice").id
            assert s.claim("plain", 30, search_id=sid) is None, backend
            other = s.claim("plain", 30)
            assert other is not None and other.search_id == pid, backend
            mine = s.claim("coder", 30, search_id=sid, allow_code=True)
            assert mine is not None and mine.id == trial.id, backend
        finally:
            s.close()


@pytest.mark.slow  # starts worker trial processes
def test_worker_without_allow_code_leaves_the_search_queued(store: Store, tmp_path: Path) -> None:
    sid = submit(store, "return {'loss': {{uniform(0, 1)}}, 'status': STATUS_OK}\n")
    worker = work(store, tmp_path, allow_code=False)
    assert worker.trials_run == 0
    search = store.get_search(sid)
    assert search.status == SearchStatus.PENDING and search.counts.total == 0


@pytest.mark.slow  # starts worker trial processes
def test_trials_run_in_a_temporary_cwd_with_data_called_once(
    store: Store, tmp_path: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERHIVE_STORE", "mongodb://user:secret@db/hh")
    body = """\
    with open("written.txt", "w") as f:
        f.write("x")
    loss = {{uniform(0, 1)}}
    if {{choice(['three', 'four'])}} == 'four':
        loss += 10
    store = os.environ.get('HYPERHIVE_STORE')
    return {'loss': loss, 'status': STATUS_OK, 'cwd': os.getcwd(), 'n': int(x_train.shape[0]), 'arr': x_test,
            'store': store}
    """
    before = sorted(os.listdir(os.getcwd()))
    sid = submit(store, body, max_trials=3)
    work(store, tmp_path)
    trials = store.list_trials(sid)
    assert [t.state for t in trials] == [TrialState.DONE] * 3, [t.error for t in trials]
    assert calls.read_text() == "data\n"  # data() once for this worker and script; later trials load it
    cwds = {t.metrics["cwd"] for t in trials}
    assert len(cwds) == 3 and os.getcwd() not in cwds
    assert not any(Path(c).exists() for c in cwds)  # each trial's folder is removed afterwards
    assert sorted(os.listdir(os.getcwd())) == before  # nothing written into the worker's working directory
    for t in trials:
        branch = t.config["params"]["loss_1"]  # the conditional: named after the previous template (Hyperas)
        assert (t.metrics["loss"] >= 10) == (branch == "four")
        assert t.metrics["n"] == 6 and t.metrics["skipped_keys"] == ["arr"]
        assert (
            t.metrics["store"] is None
        )  # the store URL (and its password) is not in the script's environment
    assert store.get_search(sid).status == SearchStatus.COMPLETED


@pytest.mark.slow  # starts worker trial processes
def test_a_script_that_never_returns_is_stopped_at_the_time_limit(store: Store, tmp_path: Path) -> None:
    sid = submit(
        store, "import time\nwhile True:\n    time.sleep(0.05)\nreturn {'loss': {{uniform(0, 1)}}}\n", 1
    )
    work(store, tmp_path, time_limit=2.0)
    [trial] = store.list_trials(sid)
    assert trial.state == TrialState.FAILED and trial.error is not None
    assert trial.error.startswith("time limit: the script ran over 2 s")


@pytest.mark.slow  # starts worker trial processes
def test_a_script_that_allocates_too_much_hits_the_memory_limit(store: Store, tmp_path: Path) -> None:
    sid = submit(store, "big = np.ones(400_000_000)\nreturn {'loss': {{uniform(0, 1)}}}\n", 1)
    work(store, tmp_path, memory_mb=1536)
    [trial] = store.list_trials(sid)
    assert trial.state == TrialState.FAILED and trial.error is not None
    assert "MemoryError" in trial.error and "memory limit is 1536 MB" in trial.error
    assert trial.error.startswith("line 15 (create_model(...))")


@pytest.mark.slow  # starts worker trial processes
def test_errors_point_at_the_script_line(store: Store, tmp_path: Path) -> None:
    sid = submit(store, "x = {{uniform(0, 1)}}\nraise ValueError('boom')\n", 1)
    work(store, tmp_path)
    [trial] = store.list_trials(sid)
    assert trial.state == TrialState.FAILED
    assert trial.error == "line 16 (create_model(...)): ValueError: boom"
    sid = submit(store, "return {'loss': {{uniform(0, 1)}}, 'status': 'fail'}\n", 1)
    work(store, tmp_path)
    [trial] = store.list_trials(sid)
    assert trial.state == TrialState.FAILED and "status 'fail'" in (trial.error or "")
