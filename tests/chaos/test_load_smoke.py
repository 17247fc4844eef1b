"""The load benchmark, small: concurrent clients, a worker and submissions against a live server answer
no 5xx and drop no connection (the benchmark's exit status says so), and its table is printed."""

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
    args = ["--seconds", "3", "--clients", "8", "--searches", "3", "--trials", "60"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "load.py"), *args],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "filled 3 searches, 180 trials" in out
    for route in ("search status", "trial list (100)", "trial details", "search list", "all"):
        assert route in out, out
    assert "server RSS:" in out and "ms per request" in out and "error:" not in out
