"""``hyperhive serve --workers N``: N API processes on one port over one SQLite file. Both processes answer,
each sees what the other and a worker wrote, and SIGTERM or SIGINT stops the server leaving no child
process behind."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from servicekit import cli_env, default_signals, free_port, wait_ready

pytestmark = pytest.mark.slow

DOC = {
    "name": "two-processes",
    "algorithm": "random",
    "max_trials": 6,
    "seed": 1,
    "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
    "params": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}},
}


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def api_processes(pid: int) -> list[int]:
    """The uvicorn worker processes of the server ``pid`` (not multiprocessing's resource tracker)."""
    return [c for c in children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def serving_process(port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of the connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote = cols[1], cols[2]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            inode = cols[9]
    if inode is None:
        return None
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def get(port: int, path: str) -> tuple[int, Any, int]:
    """(status, JSON body, local port) over a new connection, left open until read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = json.loads(r.read())
        return r.status, body, conn.sock.getsockname()[1]
    finally:
        conn.close()


def start_serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "serve", "--no-auth", "--store",
         f"sqlite:///{tmp_path / 'hh.db'}", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=tmp_path, env=cli_env(), stdout=log, stderr=subprocess.STDOUT, preexec_fn=default_signals,
    )  # fmt: skip
    log.close()
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes], sig: int, pids: list[int]) -> None:
    """Send ``sig`` to the server; it must exit 0 and its child processes must be gone within 10 s."""
    proc.send_signal(sig)
    try:
        code = proc.wait(30)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in pids if alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert code == 0, code
    assert not left, f"child processes left running: {left}"


def test_two_api_processes_share_the_store_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = start_serve(tmp_path, port)
    pids = children(proc.pid)
    try:
        api = api_processes(proc.pid)
        assert len(api) == 2, (api, (tmp_path / "serve.log").read_text())
        body = json.dumps(DOC).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/searches", body, {"Content-Type": "application/json"})
        created = conn.getresponse()
        sid = json.loads(created.read())["id"]
        assert created.status == 201
        conn.close()
        worker = subprocess.run(
            [sys.executable, "-m", "hyperhive.cli", "worker", "--store", f"sqlite:///{tmp_path / 'hh.db'}",
             "--burst", "--log-level", "WARNING"],
            cwd=tmp_path, env=cli_env(), capture_output=True, timeout=120, preexec_fn=default_signals,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-2000:]
        # every process answers with the finished search, whichever the kernel hands the connection to
        seen: dict[int, int] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            status, search, _ = get(port, f"/api/searches/{sid}")
            assert status == 200
            assert search["status"] == "completed" and search["counts"]["done"] == 6, search
            page_status, page, _ = get(port, f"/api/searches/{sid}/trials?state=done")
            assert page_status == 200 and page["total"] == 6 and len(page["items"]) == 6
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            who = serving_process(port, conn.sock.getsockname()[1], api)
            conn.close()
            if who is not None:
                seen[who] = seen.get(who, 0) + 1
        assert set(seen) == set(api), f"answered by {seen}, API processes {api}"
    finally:
        stop(proc, signal.SIGTERM, pids)


def test_sigint_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    proc = start_serve(tmp_path, port)
    pids = children(proc.pid)
    assert len(api_processes(proc.pid)) == 2
    assert get(port, "/api/searches")[0] == 200
    stop(proc, signal.SIGINT, pids)
