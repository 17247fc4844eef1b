"""``hyperhive run model.py``: the embedded store, API and workers (with --allow-code: the script is this
user's own code on this machine) run a Hyperas script to the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hyperaskit import SCRIPTS


@pytest.mark.slow
def test_run_a_script_end_to_end(tmp_path: Path) -> None:
    model = tmp_path / "tiny.py"
    model.write_text((SCRIPTS / "tiny.py.txt").read_text())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("HYPERHIVE_HOME", None)
    out = subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", "run", str(model), "--workers", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "completed: 2/2 trials" in out.stdout  # max_trials from the script's optim.minimize(max_evals=2)
    assert "config.params.b" in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hyperhive", "tiny.py"]
