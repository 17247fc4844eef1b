"""``hyperhive worker --gpus 0,1``: one worker process per GPU, supervised.

Each child is ``python -m hyperhive.cli worker <same options> --child`` with ``CUDA_VISIBLE_DEVICES``
set to its GPU (so the backend sees exactly one device, as device 0) and GPU memory growth on. The
parent:

- restarts a child that died (exit code not 0: a crash, an out-of-memory kill), after
  ``restart_delay`` seconds, unless it died ``crash_limit`` times within ``crash_window`` seconds (then
  that GPU is given up, logged, and the parent's exit code is 1);
- lets a child that exited 0 (``--max-trials``, ``--idle-exit``, ``--burst``) stay down;
- forwards the first SIGTERM/SIGINT to every child as SIGTERM (each hands its trial back and exits 0) and
  stops restarting; a second signal kills the children (SIGKILL);
- returns when every child is down: 0, or 1 when a GPU was given up or a child had to be killed.

Children ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the parent forwards one
SIGTERM instead) and receive SIGTERM if the parent dies (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("hyperhive.worker")

CHILD_GPU_ENV = "HYPERHIVE_WORKER_GPU"


@dataclass
class Child:
    gpu: str
    proc: subprocess.Popen[bytes] | None = None
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    restart_at: float | None = None
    done: bool = False
    exit_code: int | None = None


def child_env(gpu: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = gpu
    env[CHILD_GPU_ENV] = gpu
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def parse_gpus(text: str) -> list[str]:
    """``"0,1"`` -> ``["0", "1"]``; ValueError for an empty or repeated entry."""
    gpus = [g.strip() for g in text.split(",")]
    if not gpus or any(not g for g in gpus):
        raise ValueError(f"--gpus {text!r}: give GPU ids separated by commas, e.g. --gpus 0,1")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus {text!r}: a GPU is listed twice")
    return gpus


def supervise(
    gpus: Sequence[str],
    child_args: Sequence[str],
    *,
    python: str = sys.executable,
    restart_delay: float = 1.0,
    crash_limit: int = 5,
    crash_window: float = 60.0,
    poll: float = 0.2,
) -> int:
    """Run and supervise one worker per GPU (see the module docstring); returns the exit code."""
    children = [Child(gpu) for gpu in gpus]
    state = {"stopping": False, "killed": False}

    def start(child: Child) -> None:
        cmd = [python, "-m", "hyperhive.cli", "worker", *child_args, "--child"]
        child.proc = subprocess.Popen(cmd, env=child_env(child.gpu), stdin=subprocess.DEVNULL)
        child.restart_at = None
        log.info("worker for GPU %s started (pid %d)", child.gpu, child.proc.pid)

    def send(sig: int) -> None:
        for c in children:
            if c.proc is not None and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(sig)

    def handler(signum: int, frame: FrameType | None) -> None:
        if state["stopping"]:
            log.warning("second signal: killing the GPU workers")
            state["killed"] = True
            send(signal.SIGKILL)
            return
        state["stopping"] = True
        log.info("%s: asking the GPU workers to hand back their trials", signal.Signals(signum).name)
        send(signal.SIGTERM)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    try:
        for child in children:
            start(child)
        while not all(c.done for c in children):
            now = time.monotonic()
            for c in children:
                if c.done:
                    continue
                if c.proc is None or c.restart_at is not None:
                    if state["stopping"]:
                        c.done = True
                    elif c.restart_at is not None and now >= c.restart_at:
                        start(c)
                    continue
                code = c.proc.poll()
                if code is None:
                    continue
                c.exit_code = code
                if code == 0 or state["stopping"]:
                    c.done = True
                    log.info("worker for GPU %s exited (code %d)", c.gpu, code)
                    continue
                while c.deaths and now - c.deaths[0] > crash_window:
                    c.deaths.popleft()
                c.deaths.append(now)
                if len(c.deaths) >= crash_limit:
                    log.error(
                        "worker for GPU %s died %d times in %.0fs (last code %d); giving this GPU up",
                        c.gpu, len(c.deaths), crash_window, code,
                    )  # fmt: skip
                    c.done, failed = True, True
                    continue
                log.warning(
                    "worker for GPU %s died (code %d); restarting in %.1fs", c.gpu, code, restart_delay
                )
                c.restart_at = now + restart_delay
            time.sleep(poll)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if any(c.proc is not None and c.proc.poll() is None for c in children):
            send(signal.SIGKILL)
    if state["killed"] or failed:
        return 1
    return 0
