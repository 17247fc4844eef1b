"""One claimed trial turned into a result: a function objective, a Keras model trained on the search's
dataset, or a Hyperas script run in a child process (:mod:`hyperhive.workers.hyperas_run`).
The daemon owns the store; this module only computes.

:func:`execute_trial` returns the :class:`~hyperhive.models.TrialResult` to report (``done``, ``failed``
or ``pruned``), or ``None`` when the trial must not be reported because it was stopped for another reason
(:class:`TrialControl` says which: cancelled, lease lost, or the worker shutting down). A trial that
raises becomes ``failed`` with the error and, for unexpected errors, the last lines of its traceback.

Errors of the search document itself are reported with ``search_error`` (the store then fails the whole
search at once instead of spending its budget on trials that would all fail the same way): a function
objective that cannot be resolved (malformed, refused, not importable, no such callable), a dataset that
cannot be loaded (a ``keras.datasets`` download failure excepted: that is the machine's network), and a
model or training section that cannot be built or compiled when no other configuration of the space
can either (up to :data:`PROBE_CONFIGS` sampled ones are built, within :data:`PROBE_SECONDS`; a search
whose failures depend on the sampled values keeps the ``max_consecutive_failures`` rule). Whatever a
function objective or Keras raises while running (out of memory, a bug in the user's function) fails
only its trial.

Every result's ``info`` records the trial's seed, the worker and host, library versions, the visible
GPUs, timings and, for Keras trials, the dataset (``dataset_sha256`` is its content hash), the model's
parameter count and layer list.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperhive.errors import HyperhiveError
from hyperhive.models import Search, Trial, TrialResult, TrialState
from hyperhive.workers.backend import devices_used, library_versions
from hyperhive.workers.hyperas_run import CodeLimits

if TYPE_CHECKING:
    from hyperhive.store.base import Store

TRACEBACK_LINES = 20
_WARNED_CPU: list[bool] = []  # the GPU-missing warning, once per process
HOST = socket.gethostname()
PROBE_CONFIGS = 8
"""How many sampled configurations a worker tries to build before calling a build error the document's."""
PROBE_SECONDS = 20.0


class StopReason(enum.StrEnum):
    """Why a running trial was stopped before it finished."""

    PRUNED = "pruned"  # the store's median rule: report it pruned
    CANCELLED = "cancelled"  # the search was cancelled: report nothing
    LEASE_LOST = "lease_lost"  # another worker owns it now: report nothing
    SHUTDOWN = "shutdown"  # this worker is stopping: hand the trial back


class TrialInterrupted(BaseException):
    """Raised by the worker's signal handler inside a function objective so that it stops at once.
    A BaseException, so that the objective's own ``except Exception`` does not swallow it."""


class _DocumentFailure(Exception):
    """Carries an error of the search document itself (see the module docstring) up to
    :func:`execute_trial`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class TrialControl:
    """The stop flag of one running trial, shared by the training loop, the heartbeat thread and the
    signal handler. The first reason given wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: StopReason | None = None  # set once, under the lock; read without it
        self.in_function = False

    def stop(self, reason: StopReason | str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = StopReason(reason)

    @property
    def reason(self) -> StopReason | None:
        return self._reason

    def is_set(self) -> bool:
        return self._reason is not None


@dataclass
class ExecutionContext:
    """What a worker process brings to every trial."""

    store: Store
    worker_id: str
    allow_objective: list[str]
    data_dir: Path
    allow_code: bool = False
    code_limits: CodeLimits = field(default_factory=lambda: CodeLimits())
    log: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("hyperhive.worker")
    )


def short_error(exc: BaseException, *, with_traceback: bool) -> str:
    """``Type: message``, followed by the last :data:`TRACEBACK_LINES` lines of the traceback."""
    head = f"{type(exc).__name__}: {exc}"
    if not with_traceback:
        return head
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return head + "\n" + "\n".join(lines[-TRACEBACK_LINES:])


def base_info(trial: Trial, ctx: ExecutionContext) -> dict[str, Any]:
    return {
        "seed": trial.seed,
        "worker": ctx.worker_id,
        "host": HOST,
        "pid": os.getpid(),
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "attempt": trial.attempts,
    }


def execute_trial(
    trial: Trial,
    search: Search,
    ctx: ExecutionContext,
    control: TrialControl,
    on_epoch: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> TrialResult | None:
    """Run one trial (see the module docstring)."""
    info = base_info(trial, ctx)
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    document = search.document or {}
    objective = document.get("objective") or {}
    function = objective.get("function") if isinstance(objective, Mapping) else None
    try:
        if document.get("script") is not None:
            result: TrialResult | None = _run_script(trial, search, ctx, control, info)
        elif function:
            result = _run_function(trial, search, function, ctx, control, info)
        else:
            result = _run_keras(trial, search, ctx, control, on_epoch, info, history)
    except TrialInterrupted:
        control.stop(StopReason.SHUTDOWN)
        result = None
    except _DocumentFailure as failure:
        error = short_error(failure.cause, with_traceback=False)
        result = TrialResult.failed(error, history=history or None, search_error=True)
    except HyperhiveError as exc:  # a configuration, dataset or objective the worker refuses: no traceback
        result = TrialResult.failed(short_error(exc, with_traceback=False), history=history or None)
    except Exception as exc:
        result = TrialResult.failed(short_error(exc, with_traceback=True), history=history or None)
    info["versions"] = library_versions()
    devices = devices_used()
    if devices:
        info["devices"] = devices  # what trained, next to the GPUs asked for ("gpus")
        if info.get("gpus") and devices == ["cpu"] and not _WARNED_CPU:
            _WARNED_CPU.append(True)
            ctx.log.warning(
                "GPU %s was asked for but the backend sees none: training on the CPU", info["gpus"]
            )
    info.setdefault("timings", {})["total"] = round(time.perf_counter() - t0, 4)
    reason = control.reason
    if reason is not None and reason != StopReason.PRUNED:
        return None
    if reason == StopReason.PRUNED:
        last = history[-1] if history else {}
        scalars = {k: v for k, v in last.items() if isinstance(v, int | float) and k != "epoch"}
        return TrialResult(
            state=TrialState.PRUNED, metrics=scalars, history=list(history), error=None, info=info
        )
    assert result is not None
    result.info = {**info, **result.info}
    return result


def _run_script(
    trial: Trial, search: Search, ctx: ExecutionContext, control: TrialControl, info: dict[str, Any]
) -> TrialResult | None:
    """A Hyperas script's trial, in a child process (see :mod:`hyperhive.workers.hyperas_run`)."""
    from hyperhive.search_spaces import SpecError
    from hyperhive.workers.hyperas_run import run_script_trial

    if not ctx.allow_code:  # the claim skips code searches for such workers; a trial got here anyway
        return TrialResult.failed("this worker does not run submitted code (start it with --allow-code)")
    try:
        return run_script_trial(trial, search, ctx.code_limits, control.is_set, info)
    except SpecError as exc:
        raise _DocumentFailure(exc) from None


def _run_function(
    trial: Trial,
    search: Search,
    function: str,
    ctx: ExecutionContext,
    control: TrialControl,
    info: dict[str, Any],
) -> TrialResult:
    from hyperhive.workers.objectives import ObjectiveError, call_objective

    params = (trial.config or {}).get("params")
    control.in_function = True
    try:
        if control.is_set():  # a stop (a signal) landed after the claim, before the handler could interrupt
            raise TrialInterrupted()
        try:
            fn = _resolved(function, tuple(ctx.allow_objective))
        except ObjectiveError as exc:
            raise _DocumentFailure(exc) from None
        metrics = call_objective(fn, function, params, search.objective_metric)
    finally:
        control.in_function = False
    return TrialResult.done(metrics, info={"objective_function": function})


@functools.lru_cache(maxsize=64)
def _resolved(reference: str, allowed: tuple[str, ...]) -> Any:
    """:func:`~hyperhive.workers.objectives.resolve`, once per reference and allow-list in a process
    (a refusal raises again each time: exceptions are not cached)."""
    from hyperhive.workers.objectives import resolve

    return resolve(reference, allowed)


def _run_keras(
    trial: Trial,
    search: Search,
    ctx: ExecutionContext,
    control: TrialControl,
    on_epoch: Callable[[list[dict[str, Any]]], bool] | None,
    info: dict[str, Any],
    history: list[dict[str, Any]],
) -> TrialResult | None:
    from hyperhive.search_spaces import SpecError
    from hyperhive.search_spaces.limit_checks import check_config_limits
    from hyperhive.workers.datasets import DatasetDownloadError, DatasetError, search_dataset
    from hyperhive.workers.model_builder import ModelBuildError
    from hyperhive.workers.optimizers import TrainingConfigError

    try:  # the limits of search_spaces/limits.py, also for a configuration that went round the API
        check_config_limits(trial.config or {})
    except SpecError as exc:
        raise ModelBuildError(f"the configuration is beyond the search limits: {exc}") from None
    from hyperhive.workers.training import run_keras_trial

    t = time.perf_counter()
    try:
        dataset, evaluate_test = search_dataset(search.document or {}, store=ctx.store, data_dir=ctx.data_dir)
    except DatasetDownloadError:
        raise
    except DatasetError as exc:
        raise _DocumentFailure(exc) from None
    info["dataset_sha256"] = dataset.sha256
    info["dataset"] = dataset.describe()
    load_s = time.perf_counter() - t

    def record(rows: list[dict[str, Any]]) -> bool:
        history[:] = rows
        return on_epoch(rows) if on_epoch is not None else control.is_set()

    try:
        outcome = run_keras_trial(
            trial.config or {},
            dataset,
            seed=trial.seed,
            objective_metric=search.objective_metric,
            evaluate_test=evaluate_test,
            on_epoch=record,
            should_stop=control.is_set,
            label=trial.id,
            log=ctx.log,
        )
    except (ModelBuildError, TrainingConfigError) as exc:
        if history or _some_config_builds(trial, search, dataset, evaluate_test, ctx, control):
            raise
        raise _DocumentFailure(exc) from None
    history[:] = outcome.history
    info["timings"] = {"load_data": round(load_s, 4), **{k: round(v, 4) for k, v in outcome.timings.items()}}
    info.update({k: v for k, v in outcome.info.items() if k != "dataset"})
    if outcome.stopped:  # the control's reason (pruned, cancelled, ...) decides what is reported
        control.stop(StopReason.SHUTDOWN)  # only stops arrive here, so a reason is already set
        return None
    return TrialResult.done(outcome.metrics, history=outcome.history)


def _some_config_builds(
    trial: Trial,
    search: Search,
    dataset: Any,
    evaluate_test: bool,
    ctx: ExecutionContext,
    control: TrialControl,
) -> bool:
    """Whether another configuration of the search's space builds and compiles (see the module
    docstring): a build error of the trial's configuration is then its own, not the document's.
    A trial stopped meanwhile (cancelled, shutting down) blames nothing on the document."""
    from hyperhive.search_spaces import parameters, sample
    from hyperhive.workers.training import config_builds

    document = search.document or {}
    tries = PROBE_CONFIGS if parameters(document) else 1  # no distributions: one configuration only
    deadline = time.monotonic() + PROBE_SECONDS
    for i in range(tries):
        if control.is_set():
            return True
        if time.monotonic() > deadline:
            break
        try:
            config = sample(document, rng_seed=trial.seed + i + 1)
        except Exception:  # the space cannot even be sampled here: do not blame the document for it
            return True
        if config_builds(config, dataset, seed=trial.seed, evaluate_test=evaluate_test):
            ctx.log.info(
                "trial %s: another configuration of the space builds; only this trial fails", trial.id
            )
            return True
    ctx.log.warning("trial %s: no sampled configuration of the space builds: failing the search", trial.id)
    return False
