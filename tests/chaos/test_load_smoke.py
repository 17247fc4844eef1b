"""The load benchmark, small: concurrent clients, a worker and submissions against a live server answer
no 5xx and drop no connection (the benchmark's exit status says so), in the closed loop and the open
loop, and both tables, the goal's verdict and the memory samples are printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_load_benchmark_smoke() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    args = ["--seconds", "3", "--clients", "8", "--searches", "3", "--trials", "60", "--rate", "20"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "load.py"), *args],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "filled 3 searches, 180 trials" in out
    closed, _, opened = out.partition("open loop: 20 requests/s offered by 8 clients")
    assert "closed loop: 8 clients" in closed and opened, out
    for phase in (closed, opened):
        for route in ("search status", "trial list (100)", "trial details", "search list", "all"):
            assert route in phase, out
        assert "ms per request" in phase
    assert "goal p99 <= 100 ms for status and list pages at 20 requests/s offered" in opened
    assert "server RSS (MB, all its processes)" in out and "error:" not in out
