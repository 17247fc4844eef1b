"""A trial of a Hyperas search (a search document with ``script``): the script run in a child process.

Running the script is running its submitter's code: only workers started with ``--allow-code`` claim
such trials (the store's claim skips them for the others), and each trial runs in a fresh child process
(:mod:`hyperhive.workers.hyperas_child`) so that it cannot corrupt the worker or the next trial:

- the templates are replaced by the trial's sampled values (the value's ``repr``, or an option's source
  text), keeping the script's line numbers, and the result written to ``<name>.py`` outside the child's
  working directory;
- the child's working directory is a new temporary folder, deleted after the trial; the worker's own
  working directory is never the child's;
- limits: ``time_limit`` seconds of wall-clock time (then the child's process group is killed), an
  address-space limit ``memory_mb`` (``RLIMIT_AS``; 0 turns it off, e.g. for CUDA, which maps far more
  address space than it uses) and a file-size limit ``file_mb``;
- the child's environment leaves out the store URL, tokens and other secrets (:data:`SECRET_ENV`);
- ``data()`` runs once per worker process and script: when it returns only numpy arrays they are cached
  (``.npz``, keyed by the script's SHA-256) in a folder of this worker process, and later trials load them
  instead of calling ``data()``; otherwise ``data()`` runs in every trial.

Cancel and shutdown kill the child at once (the trial goes back to the queue, or ends cancelled).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive.models import Search, Trial, TrialResult

CHILD_MODULE = "hyperhive.workers.hyperas_child"
SECRET_ENV = re.compile(r"^HYPERHIVE_|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY", re.IGNORECASE)
"""Environment variables a script's process does not get (the store URL may hold a password). Hygiene,
not a wall: the script runs as the worker's user, who can read the worker's own environment."""
POLL_SECONDS = 0.1
OUTPUT_TAIL = 20
"""Lines of the child's output kept in a failed trial's error."""


@dataclass(frozen=True)
class CodeLimits:
    """What one script trial may use."""

    time_limit: float = 3600.0
    memory_mb: int = 8192
    file_mb: int = 1024


class ScriptRefused(Exception):
    """This worker does not run submitted code (not started with ``--allow-code``)."""


_cache_dir: Path | None = None


def data_cache_dir() -> Path:
    """This worker process's folder of cached ``data()`` arrays (removed when the process exits)."""
    global _cache_dir
    if _cache_dir is None or not _cache_dir.exists():
        _cache_dir = Path(tempfile.mkdtemp(prefix=f"hyperhive-hyperas-data-{os.getpid()}-"))
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def child_env() -> dict[str, str]:
    """The worker's environment without :data:`SECRET_ENV` variables."""
    return {k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-OUTPUT_TAIL:])[-4000:]


def run_script_trial(
    trial: Trial, search: Search, limits: CodeLimits, should_stop: Any, info: dict[str, Any]
) -> TrialResult | None:
    """Run one trial of a Hyperas search; None when ``should_stop()`` cut it short (cancel, shutdown).

    Raises ``search_spaces.SpecError`` when the stored script no longer parses (an error of the search).
    """
    from hyperhive.search_spaces.hyperas import parse_script

    source: str = search.document["script"]
    script = parse_script(source)
    params = dict((trial.config or {}).get("params") or {})
    rendered = script.render(params)
    digest = hashlib.sha256(source.encode()).hexdigest()
    name = (search.name or "script").replace("/", "_")[:80]
    info["script_sha256"] = digest
    with tempfile.TemporaryDirectory(prefix="hyperhive-trial-") as tmp:
        io_dir, cwd = Path(tmp) / "io", Path(tmp) / "cwd"
        io_dir.mkdir(mode=0o700)
        cwd.mkdir(mode=0o700)
        script_path = io_dir / f"{name}.py"
        script_path.write_text(rendered, encoding="utf-8")
        result_path = io_dir / "result.json"
        log_path = io_dir / "output.log"
        job = {
            "script": str(script_path),
            "result": str(result_path),
            "data_cache": str(data_cache_dir() / f"{digest}.npz"),
            "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb,
        }
        job_path = io_dir / "job.json"
        job_path.write_text(json.dumps(job))
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(job_path)],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=child_env(),
            )
            try:
                while proc.poll() is None:
                    if should_stop():
                        _kill(proc)
                        return None
                    if time.monotonic() - t0 > limits.time_limit:
                        _kill(proc)
                        return TrialResult.failed(
                            f"time limit: the script ran over {limits.time_limit:g} s and was stopped\n"
                            + _tail(log_path),
                            info={"time_limit": limits.time_limit},
                        )
                    time.sleep(POLL_SECONDS)
            finally:
                if proc.poll() is None:
                    _kill(proc)
        info.setdefault("timings", {})["script"] = round(time.monotonic() - t0, 4)
        try:
            out = json.loads(result_path.read_text())
        except (OSError, ValueError):
            code = proc.returncode
            why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            return TrialResult.failed(
                f"the script's process ended without a result ({why}); its memory limit is "
                f"{limits.memory_mb} MB\n" + _tail(log_path)
            )
    if "error" in out:
        return TrialResult.failed(
            str(out["error"]), info={"line": out.get("line"), "traceback": out.get("traceback")}
        )
    return TrialResult.done(dict(out["metrics"]))
