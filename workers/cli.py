"""``hyperhive worker`` (the daemon) and ``hyperhive retrain`` (the best configuration, saved as a model).

Settings come from :func:`hyperhive.settings.get_settings` (``HYPERHIVE_*`` environment variables),
overridden by the flags. Errors are one line on stderr and a non-zero exit code, never a traceback:
2 for bad flags, 3 when the store cannot be reached, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hyperhive.cli_store import EXIT_STORE, EXIT_USAGE
from hyperhive.errors import HyperhiveError

if TYPE_CHECKING:
    from hyperhive.settings import Settings
    from hyperhive.store.base import Store


STORE_OPTION = typer.Option(
    None, "--store", help="store URL (env HYPERHIVE_STORE; default sqlite:///.hyperhive/hyperhive.db)"
)
LOG_LEVEL_OPTION = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR")


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``retrain`` to the ``hyperhive`` app."""
    app.command("worker")(worker)
    app.command("retrain")(retrain)


def _fail(message: str, code: int = 1) -> typer.Exit:
    from hyperhive.console import fail

    return fail(message, code)


def _setup_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise _fail(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR", EXIT_USAGE)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def _settings(**overrides: object) -> Settings:
    from hyperhive.settings import BadSettings, get_settings

    try:
        return get_settings(**overrides)
    except BadSettings as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


def _open_store(url: str) -> Store:
    """The store a worker or ``retrain`` uses; it must exist already (see :mod:`hyperhive.cli_store`)."""
    from hyperhive.cli_store import open_cli_store

    return open_cli_store(url, must_exist=True)


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent (the GPU supervisor) dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _exit_with_parent(parent: int, poll: float = 0.5) -> None:
    """SIGTERM this process once (it hands its trial back and exits) when process ``parent`` ends, even by
    SIGKILL: a thread polls the parent pid. Only one mechanism: ``PR_SET_PDEATHSIG`` as well would deliver a
    second SIGTERM, which the worker reads as a cold shutdown that leaves its trial to expire."""
    if os.getppid() != parent:
        raise _fail(f"the parent process {parent} is gone; exiting")

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        logging.getLogger("hyperhive.worker").warning("parent process %d is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker(
    store: str | None = STORE_OPTION,
    gpus: str | None = typer.Option(None, "--gpus", help="GPU ids, e.g. 0,1: one worker process per GPU"),
    cpu: bool = typer.Option(False, "--cpu", help="one process on the CPU (hides the GPUs)"),
    max_trials: int | None = typer.Option(None, "--max-trials", min=1, help="exit after this many trials"),
    idle_exit: float | None = typer.Option(
        None, "--idle-exit", min=0.0, help="exit after this many seconds without work"
    ),
    lease_seconds: float | None = typer.Option(
        None, "--lease-seconds", help="a claimed trial's lease (default 60 s)"
    ),
    heartbeat_seconds: float | None = typer.Option(
        None, "--heartbeat-seconds", help="heartbeat interval (default 10 s, at most a third of the lease)"
    ),
    allow_objective: list[str] | None = typer.Option(
        None, "--allow-objective", help="module prefix whose functions may run as objectives (repeatable)"
    ),
    search: str | None = typer.Option(None, "--search", help="claim trials of this search only"),
    burst: bool = typer.Option(False, "--burst", help="exit as soon as there is no work"),
    allow_code: bool = typer.Option(
        False,
        "--allow-code",
        help="also run Hyperas scripts: their submitters' code, run on this machine (remote code execution)",
    ),
    code_time_limit: float = typer.Option(
        3600.0, "--code-time-limit", min=1.0, help="seconds per script trial"
    ),
    code_memory_mb: int = typer.Option(
        8192, "--code-memory-mb", min=0, help="address-space limit of a script trial (MB; 0: none, e.g. CUDA)"
    ),
    store_patience: float | None = typer.Option(
        None,
        "--store-patience",
        min=0.0,
        help="exit after the store is unreachable this long (default: never)",
    ),
    log_level: str = LOG_LEVEL_OPTION,
    child: bool = typer.Option(False, "--child", hidden=True),
    exit_with_parent: int | None = typer.Option(
        None,
        "--exit-with-parent",
        min=1,
        help="stop when process PID ends (how `hyperhive up` starts workers)",
    ),
) -> None:
    """Run a worker: claim trials from the store, train them, report the metrics, until told to stop.

    SIGTERM or Ctrl-C hands the running trial back to the queue and exits 0; a second one exits at once.
    """
    from hyperhive.settings import parse_objective_prefixes

    _setup_logging(log_level)
    if gpus and cpu:
        raise _fail("give --gpus or --cpu, not both", EXIT_USAGE)
    settings = _settings(store=store, lease_seconds=lease_seconds, heartbeat_seconds=heartbeat_seconds)
    lease = settings.lease_seconds
    beat = settings.heartbeat_seconds
    if heartbeat_seconds is None and "HYPERHIVE_HEARTBEAT_SECONDS" not in os.environ:
        beat = min(beat, lease / 3)
    if beat >= lease:
        raise _fail(
            f"--heartbeat-seconds ({beat:g}) must be shorter than --lease-seconds ({lease:g})", EXIT_USAGE
        )
    try:  # the defaults, HYPERHIVE_ALLOW_OBJECTIVE and the flags
        prefixes = parse_objective_prefixes([*settings.allow_objective, *(allow_objective or [])])
    except ValueError as exc:
        raise _fail(f"--allow-objective: {exc}", EXIT_USAGE) from None

    if exit_with_parent is not None:
        _exit_with_parent(exit_with_parent)
    if gpus and not child:
        from hyperhive.workers.supervisor import parse_gpus, supervise

        try:
            gpu_list = parse_gpus(gpus)
        except ValueError as exc:
            raise _fail(str(exc), EXIT_USAGE) from None
        from hyperhive.devices import missing_gpu_warning

        warning = missing_gpu_warning(gpu_list)
        if warning:
            logging.getLogger("hyperhive.worker").warning("%s", warning)
        # the store URL (it may hold a password) goes to the children in the environment, not in argv
        os.environ["HYPERHIVE_STORE"] = settings.store
        args = ["--lease-seconds", str(lease), "--heartbeat-seconds", str(beat)]
        args += ["--log-level", log_level]
        for prefix in allow_objective or []:
            args += ["--allow-objective", prefix]
        for flag, value in (("--max-trials", max_trials), ("--idle-exit", idle_exit), ("--search", search),
                            ("--store-patience", store_patience)):  # fmt: skip
            if value is not None:
                args += [flag, str(value)]
        if burst:
            args.append("--burst")
        if allow_code:
            args += [
                "--allow-code",
                "--code-time-limit",
                str(code_time_limit),
                "--code-memory-mb",
                str(code_memory_mb),
            ]
        raise typer.Exit(supervise(gpu_list, args))

    from hyperhive.workers.backend import configure_devices
    from hyperhive.workers.daemon import ExitReason, Worker, WorkerOptions
    from hyperhive.workers.hyperas_run import CodeLimits

    gpu_ids: list[str] = []
    if child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
        gpu = os.environ.get("HYPERHIVE_WORKER_GPU")
        gpu_ids = [gpu] if gpu else []
    configure_devices(cpu=cpu)
    options = WorkerOptions.from_settings(
        settings,
        lease_seconds=lease,
        heartbeat_seconds=beat,
        max_trials=max_trials,
        idle_exit=idle_exit,
        burst=burst,
        search_id=search,
        allow_objective=prefixes,
        gpus=gpu_ids,
        store_patience=store_patience,
        allow_code=allow_code,
        code_limits=CodeLimits(time_limit=code_time_limit, memory_mb=code_memory_mb),
    )
    the_store = _open_store(settings.store)
    try:
        reason = Worker(the_store, options).work(install_signals=True)
    except HyperhiveError as exc:
        raise _fail(str(exc)) from None
    finally:
        the_store.close()
    if reason == ExitReason.STORE_LOST:
        raise _fail("the store stayed unreachable; exiting", EXIT_STORE)


def retrain(
    search_id: str = typer.Argument(..., help="the search whose best configuration to retrain"),
    out: Path = typer.Option(Path("best.keras"), "--out", "-o", help="where to save the model (.keras)"),
    store: str | None = STORE_OPTION,
    trial: str | None = typer.Option(None, "--trial", help="retrain this trial instead of the best one"),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="train this many epochs instead"),
    cpu: bool = typer.Option(False, "--cpu", help="train on the CPU"),
    log_level: str = LOG_LEVEL_OPTION,
) -> None:
    """Retrain the best trial's configuration of SEARCH_ID with its seed, save the model, print metrics."""
    from hyperhive.console import console
    from hyperhive.workers.backend import configure_devices
    from hyperhive.workers.datasets import DatasetError
    from hyperhive.workers.retrain import retrain as do_retrain

    _setup_logging(log_level)
    configure_devices(cpu=cpu)
    settings = _settings(store=store)
    the_store = _open_store(settings.store)
    try:
        result = do_retrain(
            the_store, search_id, out, trial_id=trial, epochs=epochs, data_dir=settings.data_dir,
            log=logging.getLogger("hyperhive.worker"),
        )  # fmt: skip
    except (HyperhiveError, DatasetError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot save the model to {out}: {exc}") from None
    finally:
        the_store.close()

    from rich.table import Table

    table = Table(
        title=f"retrained trial {result.trial.id} (#{result.trial.number}, seed {result.trial.seed})"
    )
    table.add_column("metric")
    table.add_column("retrained", justify="right")
    table.add_column("original", justify="right")
    for key, value in result.metrics.items():
        if isinstance(value, int | float) and value is not None:
            old = result.trial.metrics.get(key)
            table.add_row(key, f"{value:.4f}", f"{old:.4f}" if isinstance(old, int | float) else "-")
    console.print(table)
    console.print(f"model saved to {result.path} (dataset sha256 {result.dataset_sha256[:12]})")
