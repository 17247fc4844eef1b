"""Helpers for the service tests: documents, users, an in-process TestClient, a tiny in-process worker
that finishes function-objective trials, and live servers in subprocesses."""

from __future__ import annotations

import importlib
import io
import os
import socket
import subprocess
import sys
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperhive.models import TrialResult
from hyperhive.settings import Settings
from hyperhive.store.base import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "search_spaces" / "examples"

FUNCTION_YAML = """\
name: quad
algorithm: random
max_trials: {n}
seed: 3
objective: {{function: "hyperhive.demo_objectives:branin"}}
params:
  x: {{uniform: [-5, 10]}}
  y: {{uniform: [0, 15]}}
"""


def function_yaml(n: int = 4, name: str = "quad") -> str:
    return FUNCTION_YAML.format(n=n).replace("name: quad", f"name: {name}")


@dataclass
class Users:
    alice: dict[str, str]
    bob: dict[str, str]
    admin: dict[str, str]
    alice_token: str
    admin_token: str


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_client(settings: Settings, store: Store) -> TestClient:
    from hyperhive.service.app import create_app

    # 127.0.0.1, not TestClient's default "testserver": the API answers only hosts it is reached by
    return TestClient(create_app(settings, store), base_url="http://127.0.0.1", raise_server_exceptions=False)


def run_trials(
    store: Store, n: int | None = None, *, search_id: str | None = None, worker: str = "w-test"
) -> int:
    """A minimal worker: claim, evaluate function objectives (or report fake Keras metrics), report.
    Stops after ``n`` trials or when there is no work. Returns how many it reported."""
    done = 0
    while n is None or done < n:
        trial = store.claim(worker, 30.0, search_id=search_id)
        if trial is None:
            break
        if trial.state != "running":  # the suggestion failed and was reported already
            done += 1
            continue
        search = store.get_search(trial.search_id)
        assert trial.lease_token is not None
        store.report(trial.id, trial.lease_token, evaluate(search.document, trial.config or {}))
        done += 1
    return done


def evaluate(document: dict[str, Any], config: dict[str, Any]) -> TrialResult:
    """A function objective's loss, or made-up Keras metrics (with a confusion matrix) for a model."""
    function = (document.get("objective") or {}).get("function")
    if function:
        module, _, name = function.partition(":")
        out = getattr(importlib.import_module(module), name)(config.get("params", {}))
        loss = float(out["loss"] if isinstance(out, dict) else out)
        return TrialResult.done({"loss": loss})
    acc = 0.5 + 0.4 * (zlib.crc32(str(config).encode()) % 100) / 100
    metrics = {
        "val_accuracy": acc,
        "val_loss": 1 - acc,
        "val_f1": acc - 0.01,
        "val_confusion_matrix": [[5, 1], [0, 4]],
        "val_per_class": {"precision": [0.9, 0.8]},
    }
    history = [{"epoch": 1, "val_accuracy": acc - 0.1}, {"epoch": 2, "val_accuracy": acc}]
    return TrialResult.done(metrics, history=history, info={"host": "test"})


def npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def good_npz(n: int = 12, classes: int = 3) -> bytes:
    rng = np.random.default_rng(0)
    return npz_bytes(
        x_train=rng.random((n, 8, 8, 1), dtype=np.float32),
        y_train=np.arange(n) % classes,
        x_val=rng.random((4, 8, 8, 1), dtype=np.float32),
        y_val=np.arange(4) % classes,
    )


# ------------------------------------------------------------------ live servers in subprocesses
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def hyperhive(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_ready(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready in {timeout}s")


class LiveServer:
    """``hyperhive serve`` in a subprocess on a free port, over a SQLite file; restartable."""

    def __init__(self, db: Path, cwd: Path, port: int | None = None) -> None:
        self.db, self.cwd = db, cwd
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self.log = cwd / f"serve-{self.port}.log"

    def start(self) -> None:
        out = self.log.open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hyperhive.cli",
                "serve",
                "--store",
                f"sqlite:///{self.db}",
                "--port",
                str(self.port),
            ],
            cwd=self.cwd,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out.close()
        wait_ready(self.url, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def default_signals() -> None:
    """``preexec_fn`` for a child that is sent SIGINT: a shell that starts pytest with ``&`` (no job
    control) makes SIGINT ignored in it and its children, and Python keeps an inherited SIG_IGN. Start
    the child with the default disposition so that it reacts as from a terminal, however pytest ran."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
