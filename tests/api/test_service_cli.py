"""The CLI against a live ``hyperhive serve`` in a subprocess: tokens, submit, status, trials, best,
cancel, extend, export, ``submit --follow``, one-line errors. (The API server killed and restarted during
a search while workers go on: tests/api/test_service_run.py::test_api_restart_with_worker_processes.)"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servicekit import LiveServer, cli_env, free_port, function_yaml, hyperhive, run_trials

from hyperhive.client import Client
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.slow


class WorkerThread:
    """Finishes trials from the store in a loop until stopped (stands in for `hyperhive worker`)."""

    def __init__(self, db: Path, pause: float = 0.0) -> None:
        self.db, self.pause = db, pause
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.reported = 0

    def run(self) -> None:
        store = SQLiteStore(self.db)
        try:
            while not self.stop.is_set():
                n = run_trials(store, 1, worker="w-thread")
                self.reported += n
                self.stop.wait(self.pause if n else 0.05)
        finally:
            store.close()

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cli")
    db = tmp / "hh.db"
    server = LiveServer(db, tmp)
    r = hyperhive("token", "create", "admin", "--admin", "--store", f"sqlite:///{db}", "--create", cwd=tmp)
    assert r.returncode == 0, r.stderr
    admin = r.stdout.strip().splitlines()[-1]
    r = hyperhive("token", "create", "alice", "--store", f"sqlite:///{db}", cwd=tmp)
    alice = r.stdout.strip().splitlines()[-1]
    server.start()
    yield {"server": server, "db": db, "tmp": tmp, "admin": admin, "alice": alice}
    server.stop()


def cli(
    live: dict[str, Any], *args: str, token: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = cli_env(HYPERHIVE_URL=live["server"].url, HYPERHIVE_TOKEN=token or live["alice"])
    return hyperhive(*args, cwd=live["tmp"], env=env, timeout=timeout)


def write_search(live: dict[str, Any], n: int, name: str = "quad") -> Path:
    path = live["tmp"] / f"{name}.yaml"
    path.write_text(function_yaml(n, name))
    return path


def test_token_create_prints_the_secret_alone_on_its_last_line(live: dict[str, Any]) -> None:
    store_url = f"sqlite:///{live['db']}"
    r = hyperhive("token", "create", "carol", "--store", store_url, cwd=live["tmp"])
    assert r.returncode == 0
    secret = r.stdout.splitlines()[-1]
    assert secret.startswith("hh_") and " " not in secret and len(secret) > 40
    assert Client(live["server"].url, secret).me() == {
        "id": r.stdout.split("token ")[1].split()[0],
        "name": "carol",
        "admin": False,
    }
    listed = hyperhive("token", "list", "--json", "--store", store_url, cwd=live["tmp"])
    tokens = json.loads(listed.stdout)
    assert {"admin", "alice", "carol"} <= {t["name"] for t in tokens}
    assert secret not in listed.stdout and "hash" not in listed.stdout
    carol = next(t for t in tokens if t["name"] == "carol")
    assert hyperhive("token", "revoke", carol["id"], "--store", store_url, cwd=live["tmp"]).returncode == 0
    r = cli(live, "status", token=secret)
    assert (
        r.returncode == 1 and "HTTP 401: invalid or revoked token" in r.stderr and "Traceback" not in r.stderr
    )


def test_token_create_refuses_a_store_that_does_not_exist(live: dict[str, Any]) -> None:
    """Regression: a mistyped --store (or the wrong folder) silently made a new empty store, and the
    token then got 401 from the real server."""
    typo = live["tmp"] / "hh-typo.db"
    r = hyperhive("token", "create", "dave", "--store", f"sqlite:///{typo}", cwd=live["tmp"])
    assert r.returncode == 2 and "no store at" in r.stderr and "--create" in r.stderr
    assert "Traceback" not in r.stderr and not typo.exists() and "hh_" not in r.stdout
    r = hyperhive("token", "list", cwd=live["tmp"])  # the default .hyperhive/hyperhive.db: not there
    assert r.returncode == 2 and "no store at" in r.stderr and not (live["tmp"] / ".hyperhive").exists()
    r = hyperhive("token", "create", "dave", "--store", f"sqlite:///{typo}", "--create", cwd=live["tmp"])
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("hh_") and typo.is_file()


def test_submit_status_trials_best_export(live: dict[str, Any]) -> None:
    r = cli(live, "submit", str(write_search(live, 5)), "--json")
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["id"]
    r = cli(live, "status", sid)
    assert r.returncode == 0 and "pending" in r.stdout and "0/5" in r.stdout
    store = SQLiteStore(live["db"])
    run_trials(store, 5, search_id=sid)
    best = store.best_trial(sid)
    store.close()
    assert best is not None
    r = cli(live, "status", sid)
    assert "completed" in r.stdout and "5/5" in r.stdout and best.id in r.stdout
    assert json.loads(cli(live, "status", sid, "--json").stdout)["counts"]["done"] == 5
    listing = cli(live, "status")
    assert sid in listing.stdout and "quad" in listing.stdout
    r = cli(live, "trials", sid, "--sort", "value")
    assert r.returncode == 0 and r.stdout.count("done") == 5 and "trials (5 of 5)" in r.stdout
    assert "params.x" in r.stdout and "params.y" in r.stdout  # the sampled parameters as columns
    page = json.loads(cli(live, "trials", sid, "--json", "--sort", "value").stdout)
    assert page["items"][0]["id"] == best.id
    r = cli(live, "best", sid, "--json")
    assert json.loads(r.stdout)["value"] == pytest.approx(best.value)
    r = cli(live, "best", sid)
    assert "config.params.x" in r.stdout and "metrics.loss" in r.stdout and "param params.x" in r.stdout
    out = live["tmp"] / "out.csv"
    r = cli(live, "export", sid, "--out", str(out))
    assert r.returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 5 and "config.params.x" in rows[0]
    bundle = json.loads(cli(live, "export", sid, "--format", "json").stdout)
    assert len(bundle["trials"]) == 5
    r = cli(live, "extend", sid, "3")
    assert r.returncode == 0 and "max_trials 8" in r.stdout and "running" in r.stdout
    r = cli(live, "cancel", sid)
    assert r.returncode == 0 and "cancelled" in r.stdout
    r = cli(live, "extend", sid, "1")
    assert r.returncode == 1 and "HTTP 409" in r.stderr and "cancelled" in r.stderr


def test_submit_prints_the_bare_id_on_stdout_for_scripts(live: dict[str, Any]) -> None:
    """`ID=$(hyperhive submit f.yaml)`: the id alone on stdout, the messages on stderr."""
    r = cli(live, "submit", str(write_search(live, 2, "scripted")))
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    assert r.stdout == f"{sid}\n" and "submitted search" in r.stderr and f"hyperhive follow {sid}" in r.stderr
    assert Client(live["server"].url, live["alice"]).get_search(sid)["name"] == "scripted"


def test_dataset_upload_prints_the_bare_id_on_stdout_for_scripts(live: dict[str, Any]) -> None:
    """Regression: `DS=$(hyperhive dataset upload d.npz)` captured two lines of prose, not the id."""
    import numpy as np

    path = live["tmp"] / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (20, 8, 8), dtype=np.uint8), y_train=np.arange(20) % 2)
    r = cli(live, "dataset", "upload", str(path))
    assert r.returncode == 0, r.stderr
    ds = r.stdout.strip()
    assert r.stdout == f"{ds}\n" and "uploaded dataset" in r.stderr and f"{{upload: {ds}}}" in r.stderr
    assert ds in [d["id"] for d in Client(live["server"].url, live["alice"]).datasets()]


def test_workers_lists_live_ones_by_default_and_tells_stopped_from_lost(live: dict[str, Any]) -> None:
    """Regression: `hyperhive workers` listed every worker that ever ran, forever, as `lost | stopped`."""
    from hyperhive.models import WorkerInfo

    store = SQLiteStore(live["db"])
    now = store.clock()
    for wid, seen, status in (
        ("w-live", now, "busy"),
        ("w-gone", now - 3600, "idle"),
        ("w-done", now, "stopped"),
    ):
        store.register_worker(
            WorkerInfo(id=wid, host="h", pid=1, started_at=seen, last_seen=seen, status=status)
        )
    store.close()
    r = cli(live, "workers", "--json")
    states = {w["id"]: w["state"] for w in json.loads(r.stdout)}
    assert states == {"w-live": "alive"}
    r = cli(live, "workers", "--all", "--json")
    states = {w["id"]: w["state"] for w in json.loads(r.stdout)}
    assert {"w-live": "alive", "w-gone": "lost", "w-done": "stopped"}.items() <= states.items()
    r = cli(live, "workers")
    assert "w-live" in r.stdout and "w-gone" not in r.stdout and "w-done" not in r.stdout
    assert "stopped or lost worker(s) not shown: hyperhive workers --all" in r.stderr


def test_submit_follow_runs_to_the_end(live: dict[str, Any]) -> None:
    path = write_search(live, 8, "followed")
    with WorkerThread(live["db"], pause=0.05):
        r = cli(live, "submit", str(path), "--follow", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    assert "submitted search" in r.stderr and "completed" in r.stdout and "8/8" in r.stdout
    assert "best" in r.stdout
    assert "(followed) 8/8: 8 done; best loss" in r.stdout  # a plain line: stdout is a pipe
    sid = r.stderr.split("submitted search ")[1].split()[0]
    s = Client(live["server"].url, live["alice"]).get_search(sid)
    assert s["status"] == "completed" and s["counts"]["done"] == 8


def test_errors_are_one_line_without_traceback(live: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nmax_trials: 0\nparams: {x: {uniform: [2, 1]}}\nobjective: {function: 'a.b:c'}\n"
    )
    r = cli(live, "submit", str(bad))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "HTTP 422" in r.stderr and "max_trials:" in r.stderr and "params.x:" in r.stderr
    r = cli(live, "status", "0123456789abcdef")
    assert r.returncode == 1 and "HTTP 404" in r.stderr and "not found" in r.stderr
    port = free_port()
    r = hyperhive(
        "status", cwd=tmp_path, env=cli_env(HYPERHIVE_URL=f"http://127.0.0.1:{port}", HYPERHIVE_TOKEN="x")
    )
    assert r.returncode == 1 and f"cannot connect to http://127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    r = cli(live, "submit", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli(live, "best", "0123456789abcdef", token=live["admin"])
    assert r.returncode == 1 and "HTTP 404" in r.stderr


def test_serve_no_auth_warns_loudly(tmp_path: Path) -> None:
    port = free_port()
    store = f"sqlite:///{tmp_path / 'x.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "serve", "--store", store, "--port", str(port), "--no-auth"],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        from servicekit import wait_ready

        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert Client(f"http://127.0.0.1:{port}").me()["name"] == "local"
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=20)
    assert "AUTHENTICATION IS OFF" in err
    assert proc.returncode == 0, err
    assert os.path.exists(tmp_path / "x.db")
