"""``hyperhive up``: starts the embedded store, API and workers, prints the URL and a token, lets client
commands from the same folder find it, and stops cleanly on SIGINT or SIGTERM (workers get SIGTERM)."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from servicekit import cli_env, default_signals, free_port, function_yaml, hyperhive, wait_ready

from hyperhive.client import Client
from hyperhive.service.embedded import Embedded, EmbeddedError, bind_socket
from hyperhive.settings import Settings

pytestmark = pytest.mark.slow


def start_up(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "up", *args],
        cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals,
    )  # fmt: skip


def wait_up_file(home: Path, proc: subprocess.Popen[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"up exited: {proc.communicate()}")
        try:
            return json.loads((home / "up.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            time.sleep(0.05)
    raise TimeoutError("up.json never appeared")


def test_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    """Stopped by SIGINT, then started again (reusing the store and the token) and stopped by SIGTERM. While
    the first runs, a second `up` in the same folder is refused; the second start has its default port
    taken and says so. (One test: each `up` start costs seconds of CI time.)"""
    proc = start_up(tmp_path, "--workers", "0")
    home = tmp_path / ".hyperhive"
    try:
        up = wait_up_file(home, proc)
        wait_ready(up["url"], proc)
        token_file = home / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert Client(up["url"], token).me() == {
            "id": Client(up["url"], token).me()["id"],
            "name": "local",
            "admin": True,
        }
        assert (home / "hyperhive.db").exists()
        # client commands run from this folder find the server and the token by themselves
        (tmp_path / "s.yaml").write_text(function_yaml(3))
        r = hyperhive("submit", "s.yaml", "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        sid = json.loads(r.stdout)["id"]
        assert hyperhive("status", sid, cwd=tmp_path).returncode == 0
        # ...but never send that token to another URL
        other = hyperhive(
            "status", cwd=tmp_path, env=cli_env(HYPERHIVE_URL=f"http://127.0.0.1:{free_port()}")
        )
        assert other.returncode == 1 and "cannot connect" in other.stderr
        # a second `up` in the same folder is refused while this one runs
        r = hyperhive("up", "--workers", "0", cwd=tmp_path, timeout=90)
        assert r.returncode == 1 and "already runs" in r.stderr and "Traceback" not in r.stderr
        assert "hyperhive stopped" not in r.stderr  # it never started
        assert json.loads((home / "up.json").read_text()) == up  # ...and left the running one's file alone
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert up["url"] in out and token in out
    assert f"dashboard: {up['url']}/login?token={token}\n" in out  # one line, never wrapped
    assert "hyperhive stopped" in err and "Traceback" not in err
    assert not (home / "up.json").exists()
    # a second `up` reuses the store and the token; its default port is taken (walk-through: with 8000
    # taken `up` served on another port without saying why), and SIGTERM stops it as cleanly as SIGINT
    sock = bind_socket("127.0.0.1", 0, fallback=False)
    sock.listen()
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "up", "--workers", "0"],
        cwd=tmp_path, env=cli_env(HYPERHIVE_PORT=str(port)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=default_signals,
    )  # fmt: skip
    try:
        up2 = wait_up_file(home, proc)
        wait_ready(up2["url"], proc)
        assert token_file.read_text().strip() == token
        assert Client(up2["url"], token).get_search(sid)["name"] == "quad"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        sock.close()
    assert proc.returncode == 0, err
    assert not up2["url"].endswith(f":{port}") and f"port {port} is taken" in out and "hyperhive up" in out
    assert up2["url"] in out and token in out
    assert f"dashboard: {up2['url']}/login?token={token}\n" in out
    assert "hyperhive stopped" in err and "Traceback" not in err
    assert not (home / "up.json").exists()


def test_up_with_a_taken_port(tmp_path: Path) -> None:
    sock = bind_socket("127.0.0.1", 0, fallback=False)
    sock.listen()
    port = sock.getsockname()[1]
    try:
        r = hyperhive("up", "--workers", "0", "--port", str(port), cwd=tmp_path, timeout=90)
        assert (
            r.returncode == 1
            and f"cannot listen on 127.0.0.1:{port}" in r.stderr
            and "Traceback" not in r.stderr
        )
        # without --port a taken default port falls back to a free one
        emb = Embedded(
            Settings(home=tmp_path / "h", store=f"sqlite:///{tmp_path / 'h' / 'x.db'}", port=port), workers=0
        )  # type: ignore[call-arg]
        emb.start()
        try:
            assert emb.url != f"http://127.0.0.1:{port}"
            assert Client(emb.url, emb.token).health()["status"] == "ok"
        finally:
            emb.stop()
        with pytest.raises(EmbeddedError):
            Embedded(Settings(home=tmp_path / "h"), workers=0, port=port).start()  # type: ignore[call-arg]
    finally:
        sock.close()


FAKE_WORKER = """
import signal, sys, time, pathlib
marker = pathlib.Path(sys.argv[1])
mode = sys.argv[2]
def on_term(signum, frame):
    marker.write_text("handed back")
    sys.exit(0)
if mode == "polite":
    signal.signal(signal.SIGTERM, on_term)
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
marker.with_suffix(".started").write_text("")
while True:
    time.sleep(0.05)
"""


class FakeEmbedded(Embedded):
    """Runs a stand-in worker that records SIGTERM (or ignores it) instead of `hyperhive worker`."""

    mode = "polite"
    counter = 0

    def worker_command(self) -> list[str]:
        script = self.home / "fake_worker.py"
        script.write_text(FAKE_WORKER)
        FakeEmbedded.counter += 1
        return [sys.executable, str(script), str(self.home / f"w{FakeEmbedded.counter}.txt"), self.mode]


@pytest.mark.parametrize("mode", ["polite", "stubborn"])
def test_stop_sends_workers_sigterm_and_kills_stragglers(tmp_path: Path, mode: str) -> None:
    home = tmp_path / "h"
    emb = FakeEmbedded(
        Settings(home=home, store=f"sqlite:///{home / 'x.db'}"), workers=2, port=free_port(), stop_timeout=1.0
    )  # type: ignore[call-arg]
    emb.mode = mode
    emb.start()
    try:
        deadline = time.monotonic() + 20
        while len(list(home.glob("w*.started"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(p.proc.poll() is None for p in emb.processes)
        assert emb.exited_workers() == []
    finally:
        t0 = time.monotonic()
        emb.stop()
        took = time.monotonic() - t0
    codes = [p.proc.returncode for p in emb.processes]
    if mode == "polite":
        assert codes == [0, 0] and took < 1.0
        assert sorted(p.read_text() for p in home.glob("w*.txt")) == ["handed back"] * 2
    else:
        assert codes == [-signal.SIGKILL] * 2 and 1.0 <= took < 5
    emb.stop()  # idempotent


def test_sigkill_of_up_makes_its_workers_exit(tmp_path: Path) -> None:
    """Regression: SIGKILL of `up` left its workers running and claiming trials forever. They watch
    their parent (--exit-with-parent): they hand their trials back and exit."""
    import os

    from hyperhive.store import SQLiteStore

    (tmp_path / "long.yaml").write_text(function_yaml(100_000, "long"))
    proc = start_up(tmp_path, "--workers", "2", "--port", str(free_port()), "--submit", "long.yaml")
    db = tmp_path / ".hyperhive" / "hyperhive.db"
    pids: list[int] = []
    try:
        wait_up_file(tmp_path / ".hyperhive", proc)
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            store = SQLiteStore(db)
            pids = [w.pid for w in store.list_workers() if w.current_trial_id]
            store.close()
        assert len(pids) == 2
    finally:
        proc.kill()
        proc.communicate(timeout=90)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
    store = SQLiteStore(db)
    [search] = store.list_searches()
    assert store.count_trials(search.id, state="running") == 0  # handed back, not left to expire
    assert {w.status for w in store.list_workers()} == {"stopped"}
    store.close()
