"""The worker daemon: claim a trial, run it with a heartbeat, report it, again. Modelled on rq's
``Worker.work()``: one short loop with named exits.

Loop (:meth:`Worker.work`)
    register -> [stop requested? -> exit] -> [max trials reached? -> exit] -> ``claim`` ->
    nothing: idle (sleep with backoff up to ``idle_max_sleep``; ``burst``: exit; ``idle_exit`` seconds
    idle: exit; ``search_id`` given and that search is final: exit) | a trial: run it while a heartbeat
    thread renews its lease, report, loop. Unless it is stopping or at ``max_trials``, the worker reports
    and claims its next trial in one store call (``Store.report_and_claim``: one SQLite transaction for
    a random search); a refused report claims nothing. Nothing else happens per trial: the claim marks
    the worker
    busy in the store, one heartbeat thread serves every trial, the search is read once, and a trial
    done in under :data:`QUICK_TRIAL_SECONDS` is logged at DEBUG (an INFO line sums them up every
    :data:`QUICK_SUMMARY_SECONDS`); failed, pruned and longer trials get their INFO line.

Heartbeats
    Every ``heartbeat_seconds`` from a background thread, and at once after every epoch (saving the
    history, so running trials show curves). Only the epochs the store has not acknowledged are sent
    (``new_epochs`` from ``from_epoch``): each epoch is written once, however long the training runs,
    and a heartbeat that failed is resent whole by the next one (the store does not duplicate it).
    A reply ``stop`` with reason ``pruned`` ends training and the
    trial is reported ``pruned``; ``cancelled`` or ``lease_lost`` end it and nothing is reported.

Signals (:meth:`Worker.install_signal_handlers`)
    The first SIGTERM or SIGINT is a warm shutdown: nothing new is claimed, the running trial stops
    (Keras: after the current batch; a function objective: at once) and is handed back to the queue
    with ``store.release``, and the worker exits with :attr:`ExitReason.STOP_REQUESTED`. A second
    signal is a cold shutdown: ``SystemExit(1)`` at once; the trial's lease expires and the store
    requeues it.

Store outages
    Every store call retries errors that mean "unreachable" (:func:`is_transient`) with exponential
    backoff up to ``retry_max_delay``; a finished result stays in memory until it is reported. After
    ``store_patience`` seconds unreachable (``None``: never give up) the worker exits with
    :attr:`ExitReason.STORE_LOST`. A report the store refuses (:class:`~hyperhive.errors.LeaseLost`:
    the lease expired and the trial went to someone else) is dropped.

A trial that raises is reported ``failed`` with a short traceback and the loop goes on; one that failed
because of the search document itself (see :mod:`hyperhive.workers.execution`) is reported as a search error,
and
the store fails its search at once.
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from hyperhive.errors import LeaseLost, NotFound, StoreUnavailable
from hyperhive.models import Search, Trial, TrialResult, TrialState, WorkerInfo
from hyperhive.settings import Settings
from hyperhive.store.base import Store
from hyperhive.workers.execution import (
    HOST,
    ExecutionContext,
    StopReason,
    TrialControl,
    TrialInterrupted,
    execute_trial,
)
from hyperhive.workers.hyperas_run import CodeLimits

T = TypeVar("T")

logger = logging.getLogger("hyperhive.worker")


class ExitReason(enum.StrEnum):
    """Why :meth:`Worker.work` returned."""

    MAX_TRIALS = "max_trials"  # ran max_trials trials
    IDLE = "idle"  # idle_exit seconds without work
    BURST = "burst"  # burst mode and no work left
    SEARCH_FINISHED = "search_finished"  # the one search it serves (search_id) is final
    STOP_REQUESTED = "stop_requested"  # SIGTERM / SIGINT / request_stop()
    STORE_LOST = "store_lost"  # the store stayed unreachable longer than store_patience


QUICK_TRIAL_SECONDS = 1.0
"""A trial done in less is logged at DEBUG, not INFO: a cheap function objective runs hundreds a second."""
QUICK_SUMMARY_SECONDS = 10.0
"""How often the quick trials done are summed up in one INFO line (and once more at exit)."""


def _setting(name: str) -> Any:
    """The default of a :class:`~hyperhive.settings.Settings` field: the one place it is written."""
    return Settings.model_fields[name].get_default(call_default_factory=True)


@dataclass
class WorkerOptions:
    """How a worker behaves. Defaults are :class:`~hyperhive.settings.Settings`' (the CLI builds it
    with :meth:`from_settings`, flags applied)."""

    lease_seconds: float = field(default_factory=lambda: float(_setting("lease_seconds")))
    heartbeat_seconds: float = field(default_factory=lambda: float(_setting("heartbeat_seconds")))
    max_trials: int | None = None
    idle_exit: float | None = None
    burst: bool = False
    search_id: str | None = None
    allow_objective: list[str] = field(default_factory=lambda: list(_setting("allow_objective")))
    data_dir: Path = field(default_factory=lambda: Settings.model_construct().data_dir)
    gpus: list[str] = field(default_factory=list)
    store_patience: float | None = None
    allow_code: bool = False
    """Claim trials that run submitted code (Hyperas scripts): remote code execution, see docs/hyperas.md."""
    code_limits: CodeLimits = field(default_factory=lambda: CodeLimits())
    idle_max_sleep: float = 2.0
    retry_max_delay: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> WorkerOptions:
        """The options of ``settings`` (lease, heartbeat, objective prefixes, dataset cache), then
        ``options`` (what the command line adds or overrides)."""
        base: dict[str, Any] = {
            "lease_seconds": settings.lease_seconds,
            "heartbeat_seconds": settings.heartbeat_seconds,
            "allow_objective": list(settings.allow_objective),
            "data_dir": settings.data_dir,
        }
        return cls(**{**base, **options})


class _StoreLost(Exception):
    pass


class _Unclaimed:
    """No claim made yet for the next trial (unlike ``None``: a claim that found no work)."""


UNCLAIMED = _Unclaimed()


class _Stopping(Exception):
    pass


def is_transient(exc: BaseException) -> bool:
    """Whether an error means the store is unreachable for now (retry later) rather than a bug: the
    store contract lets only :class:`~hyperhive.errors.StoreUnavailable` say so, whatever the backend."""
    return isinstance(exc, StoreUnavailable)


class _WorkerLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['worker']}] {msg}", kwargs  # type: ignore[index]


def new_worker_id() -> str:
    gpu = os.environ.get("HYPERHIVE_WORKER_GPU")
    return f"{HOST}-{os.getpid()}" + (f"-gpu{gpu}" if gpu else "") + f"-{uuid.uuid4().hex[:4]}"


class HeartbeatThread:
    """The background thread that beats the running trial's :class:`Heartbeat` every ``interval``
    seconds: one per worker, started on first use and reused by every trial (a thread started and
    joined per trial costs more than a trial of a cheap function objective)."""

    def __init__(self, name: str = "heartbeat") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._beating = threading.Lock()
        self._current: Heartbeat | None = None
        self._due = 0.0
        self._idle = 1.0
        """How long the thread sleeps with no trial to beat: the last interval seen."""
        self._wake_at = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, heartbeat: Heartbeat) -> None:
        """Beat ``heartbeat`` from now on, first after its interval."""
        with self._cond:
            if self._closed:
                raise RuntimeError("heartbeat thread closed")
            self._current = heartbeat
            self._due = time.monotonic() + heartbeat.interval
            self._idle = heartbeat.interval
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            elif self._due < self._wake_at:  # else the thread wakes in time and finds it (no switch)
                self._cond.notify()

    def unwatch(self) -> None:
        """Stop beating; returns once a beat under way has ended (none follows)."""
        with self._cond:
            self._current = None  # the sleeping thread finds it gone when it wakes
        with self._beating:
            pass

    def close(self) -> None:
        with self._cond:
            self._closed, self._current = True, None
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._current is None or time.monotonic() < self._due):
                    # idle: wake every interval, so that a trial watched meanwhile is never beaten late
                    now = time.monotonic()
                    self._wake_at = now + self._idle if self._current is None else self._due
                    self._cond.wait(self._wake_at - now)
                if self._closed:
                    return
                heartbeat = self._current
                assert heartbeat is not None
                self._due = time.monotonic() + heartbeat.interval
                self._idle = heartbeat.interval
                self._beating.acquire()  # under the condition: unwatch() waits for this beat
            try:
                heartbeat.beat(None)
                if heartbeat.on_beat is not None:
                    heartbeat.on_beat()
            except Exception:  # beat() logs store errors itself; on_beat's must not end the thread
                heartbeat.log.exception("heartbeat for trial %s failed", heartbeat.trial.id)
            finally:
                self._beating.release()


class Heartbeat:
    """Renews one trial's lease from a background thread and turns the store's answers into stops.

    It holds what it needs and nothing of the worker's (as Optuna's ``HeartbeatThread`` and Celery's
    ``Heart``): the store, the trial and its stop control, the lease and the interval, a logger, and
    ``on_beat``, called after each timed beat (the worker refreshes its own record there). ``thread``
    is the worker's :class:`HeartbeatThread` (None: one of its own, for this trial)."""

    def __init__(
        self,
        store: Store,
        trial: Trial,
        control: TrialControl,
        *,
        lease_seconds: float,
        interval: float,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger,
        on_beat: Callable[[], None] | None = None,
        thread: HeartbeatThread | None = None,
    ) -> None:
        self.store = store
        self.trial = trial
        self.control = control
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.log = log
        self.on_beat = on_beat
        self._own = thread is None
        self._thread = thread or HeartbeatThread(f"heartbeat-{trial.id}")
        self._lock = threading.Lock()
        self._warned = False
        self._latest: list[dict[str, Any]] = []
        """The history as of the last epoch; ``_acked`` of its epochs are in the store."""
        self._acked = 0

    def start(self) -> None:
        self._thread.watch(self)

    def stop(self) -> None:
        self._thread.unwatch()
        if self._own:
            self._thread.close()

    def beat(self, history: list[dict[str, Any]] | None) -> None:
        """One heartbeat, saving the epochs of ``history`` (or of the latest one seen) that the store
        has not acknowledged yet; store errors are logged, never raised."""
        assert self.trial.lease_token is not None
        with self._lock:
            if history is not None:
                self._latest = history
            start = min(self._acked, len(self._latest))
            new = self._latest[start:]
            try:
                lease = self.lease_seconds
                if new:
                    reply = self.store.heartbeat(
                        self.trial.id, self.trial.lease_token, lease, new_epochs=new, from_epoch=start
                    )
                else:
                    reply = self.store.heartbeat(self.trial.id, self.trial.lease_token, lease)
                self._acked = start + len(new)
            except NotFound:
                self.control.stop(StopReason.LEASE_LOST)
                return
            except Exception as exc:  # logged, never raised: the lease simply runs down
                if not self._warned:
                    level = logging.WARNING if is_transient(exc) else logging.ERROR
                    self.log.log(level, "heartbeat for trial %s failed (%s); will retry", self.trial.id, exc)
                    self._warned = True
                return
            self._warned = False
        if reply.should_stop and reply.reason:
            self.control.stop(reply.reason)

    def on_epoch(self, history: list[dict[str, Any]]) -> bool:
        """The training loop's per-epoch hook: save progress now; True when the trial must stop."""
        self.beat(history)
        return self.control.is_set()


class Worker:
    """A worker process's loop over the store (see the module docstring)."""

    def __init__(
        self, store: Store, options: WorkerOptions | None = None, *, worker_id: str | None = None
    ) -> None:
        self.store = store
        self.options = options or WorkerOptions()
        self.id = worker_id or new_worker_id()
        self.log = _WorkerLog(logger, {"worker": self.id})
        self.trials_run = 0
        self.timings: collections.deque[dict[str, float]] = collections.deque(maxlen=1000)
        self.exit_reason: ExitReason | None = None
        self._stop_requested = False
        self._wake = threading.Event()
        self._current: TrialControl | None = None
        self._searches: dict[str, Search] = {}
        self._last_touch = 0.0
        self._heartbeats = HeartbeatThread(f"heartbeat-{self.id}")
        self._quick = 0
        self._quick_since = 0.0
        self.context = ExecutionContext(
            store=store,
            worker_id=self.id,
            allow_objective=list(self.options.allow_objective),
            data_dir=self.options.data_dir,
            allow_code=self.options.allow_code,
            code_limits=self.options.code_limits,
            log=self.log,
        )

    # ------------------------------------------------------------------------------- stopping
    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        """Warm shutdown: take nothing new, stop the running trial and hand it back."""
        self._stop_requested = True
        self._wake.set()
        current = self._current
        if current is not None:
            current.stop(StopReason.SHUTDOWN)

    def install_signal_handlers(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """First signal: warm shutdown; second: cold (``SystemExit(1)``). Main thread only."""

        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stop_requested:
                self.log.warning("%s again: cold shutdown, the running trial's lease will expire", name)
                raise SystemExit(1)
            self.log.info("%s: finishing up (taking no new trial, handing back the running one)", name)
            self.request_stop()
            current = self._current
            if current is not None and current.in_function:
                raise TrialInterrupted()

        for sig in signals:
            signal.signal(sig, handler)

    # ------------------------------------------------------------------------------- store calls
    def _with_store(self, fn: Callable[[], T], what: str, *, finish: bool = False) -> T:
        """``fn()``, retried while the store is unreachable (see the module docstring). While stopping,
        gives up at once (``finish``: after ``lease_seconds`` more) by raising ``_Stopping``."""
        delay = 0.2
        down_since: float | None = None
        stop_deadline: float | None = None
        while True:
            try:
                result = fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    self.log.warning("store unreachable during %s (%s); retrying", what, exc)
                patience = self.options.store_patience
                if patience is not None and now - down_since > patience:
                    self.log.error("store unreachable for %.0fs during %s; giving up", now - down_since, what)
                    raise _StoreLost(what) from exc
                if self._stop_requested:
                    if not finish:
                        raise _Stopping(what) from exc
                    if stop_deadline is None:
                        stop_deadline = now + self.options.lease_seconds
                    elif now > stop_deadline:
                        raise _Stopping(what) from exc
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self.options.retry_max_delay)
                continue
            if down_since is not None:
                self.log.info("store reachable again after %.1fs (%s)", time.monotonic() - down_since, what)
            return result

    def _touch(self, status: str, trial_id: str | None) -> None:
        try:
            self.store.touch_worker(self.id, status=status, current_trial_id=trial_id)
            self._last_touch = time.monotonic()
        except Exception as exc:
            if not is_transient(exc):
                raise

    def _register(self) -> None:
        now = time.time()
        info = WorkerInfo(
            id=self.id,
            host=HOST,
            pid=os.getpid(),
            started_at=now,
            last_seen=now,
            gpus=list(self.options.gpus),
            status="idle",
            info={
                "search_id": self.options.search_id,
                "allow_objective": list(self.options.allow_objective),
                "allow_code": self.options.allow_code,
                "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
            },
        )
        self._with_store(lambda: self.store.register_worker(info), "registration")

    def _search(self, search_id: str) -> Search:
        """The trial's search (its document never changes, so it is read once per process)."""
        search = self._searches.get(search_id)
        if search is None:
            search = self._with_store(lambda: self.store.get_search(search_id), "reading the search")
            self._searches[search_id] = search
        return search

    # ------------------------------------------------------------------------------- the loop
    def work(self, *, install_signals: bool = False) -> ExitReason:
        """Run until one of the :class:`ExitReason` exits; returns it (also kept in ``exit_reason``)."""
        if install_signals:
            self.install_signal_handlers()
        self.log.info(
            "worker started (pid %d, store %s, gpus %s)",
            os.getpid(),
            getattr(self.store, "url", "?"),
            ",".join(self.options.gpus)
            or os.environ.get("CUDA_VISIBLE_DEVICES", "all visible")
            or "none (CPU)",
        )
        reason: ExitReason | None = None
        try:
            self._register()
            if self.options.search_id is not None:
                self._search(self.options.search_id)  # NotFound for a mistyped --search
            reason = self._loop()
        except _StoreLost:
            reason = ExitReason.STORE_LOST
        except _Stopping:
            reason = ExitReason.STOP_REQUESTED
        finally:
            self._heartbeats.close()
            self._heartbeats = HeartbeatThread(f"heartbeat-{self.id}")
            if reason != ExitReason.STORE_LOST:
                self._touch("stopped", None)
        self.exit_reason = reason
        self._quick_done(flush=True)
        self.log.info("worker exiting: %s after %d trial(s)", reason, self.trials_run)
        return reason

    def _loop(self) -> ExitReason:
        opts = self.options
        idle_since: float | None = None
        sleep = 0.05
        claimed: Trial | _Unclaimed | None = UNCLAIMED
        while True:
            if isinstance(claimed, _Unclaimed):
                if self._stop_requested:
                    return ExitReason.STOP_REQUESTED
                if opts.max_trials is not None and self.trials_run >= opts.max_trials:
                    return ExitReason.MAX_TRIALS
                t0 = time.perf_counter()
                trial = self._with_store(
                    lambda: self.store.claim(
                        self.id, opts.lease_seconds, search_id=opts.search_id, allow_code=opts.allow_code
                    ),
                    "claim",
                )
                claim_s = time.perf_counter() - t0
            else:  # claimed with the previous trial's report (a stop since then hands it back in _run)
                trial, claim_s, claimed = claimed, 0.0, UNCLAIMED
                if trial is None and self._stop_requested:
                    return ExitReason.STOP_REQUESTED
            if trial is None:
                now = time.monotonic()
                idle_since = idle_since if idle_since is not None else now
                if opts.burst:
                    return ExitReason.BURST
                if opts.search_id is not None and self._search_is_final(opts.search_id):
                    return ExitReason.SEARCH_FINISHED
                if opts.idle_exit is not None and now - idle_since >= opts.idle_exit:
                    return ExitReason.IDLE
                if now - self._last_touch >= opts.heartbeat_seconds:
                    self._touch("idle", None)
                wait = (
                    sleep
                    if opts.idle_exit is None
                    else min(sleep, max(0.0, idle_since + opts.idle_exit - now))
                )
                self._wake.wait(wait)
                self._wake.clear()
                sleep = min(sleep * 2, opts.idle_max_sleep)
                continue
            idle_since, sleep = None, 0.05
            self.trials_run += 1
            if trial.state.is_final:  # the suggestion failed and the store already reported it
                self.log.warning("trial %s failed at claim: %s", trial.id, trial.error)
                continue
            claimed = self._run(trial, claim_s)

    def _search_is_final(self, search_id: str) -> bool:
        try:
            search = self._with_store(lambda: self.store.get_search(search_id), "reading the search")
        except NotFound:
            return True
        return search.status.is_final

    def _run(self, trial: Trial, claim_s: float) -> Trial | _Unclaimed | None:
        """Run one claimed trial and report (or hand back, or drop) it. Returns the next trial when
        the report claimed it (None: there was no work), else :data:`UNCLAIMED`."""
        assert trial.lease_token is not None
        token = trial.lease_token
        control = TrialControl()
        self._current = control
        if self._stop_requested:  # a signal arrived during the claim
            control.stop(StopReason.SHUTDOWN)
            self._hand_back(trial)
            return UNCLAIMED
        try:
            search = self._search(trial.search_id)
        except NotFound:  # deleted between our claim and this read: nothing to run, nothing to report
            self.log.warning("search %s was deleted; dropping trial %s", trial.search_id, trial.id)
            return UNCLAIMED
        heartbeat = Heartbeat(
            self.store,
            trial,
            control,
            lease_seconds=self.options.lease_seconds,
            interval=self.options.heartbeat_seconds,
            log=self.log,
            on_beat=lambda: self._touch("busy", trial.id),
            thread=self._heartbeats,
        )
        heartbeat.start()  # the claim marked this worker busy with the trial; each timed beat again
        t0 = time.perf_counter()
        try:
            result = execute_trial(trial, search, self.context, control, on_epoch=heartbeat.on_epoch)
        finally:
            heartbeat.stop()
            self._current = None
        run_s = time.perf_counter() - t0
        reason = control.reason
        if result is None:
            if reason == StopReason.SHUTDOWN:
                self._hand_back(trial)
            else:
                self.log.info("%s stopped: %s; nothing reported", _label(trial, search), reason)
            return UNCLAIMED
        t1 = time.perf_counter()
        opts = self.options
        more = not self._stop_requested and (opts.max_trials is None or self.trials_run < opts.max_trials)
        reported, claimed = self._report(trial, token, result, claim_next=more)
        report_s = time.perf_counter() - t1
        timings = result.info.get("timings", {})
        fit_s = float(timings.get("fit", 0.0))
        self.timings.append(
            {
                "claim": claim_s,
                "run": run_s,
                "fit": fit_s,
                "report": report_s,
                "outside_fit": claim_s + run_s - fit_s + report_s,
            }
        )
        if reported is not None:
            if reported.state == TrialState.DONE and run_s < QUICK_TRIAL_SECONDS:
                if self.log.isEnabledFor(logging.DEBUG):  # one line per trial: not formatted for nothing
                    self.log.debug("%s %s", _label(trial, search), _outcome_text(reported, search, run_s))
                self._quick_done()
            else:
                self.log.info("%s %s", _label(trial, search), _outcome_text(reported, search, run_s))
            if reported.info.get("error_kind") == "search":
                self.log.warning("search %s (%s) failed: its document cannot run", search.id, search.name)
        return claimed

    def _quick_done(self, *, flush: bool = False) -> None:
        """Count a quick trial done (``flush``: none, say what was counted); one INFO line per
        :data:`QUICK_SUMMARY_SECONDS` sums them up."""
        now = time.monotonic()
        if not flush:
            if self._quick == 0:
                self._quick_since = now
            self._quick += 1
        if self._quick and (flush or now - self._quick_since >= QUICK_SUMMARY_SECONDS):
            self.log.info(
                "%d trial(s) done in the last %.0fs, each in under %.0fs (a line each at --log-level DEBUG)",
                self._quick,
                now - self._quick_since,
                QUICK_TRIAL_SECONDS,
            )
            self._quick = 0

    def _hand_back(self, trial: Trial) -> None:
        assert trial.lease_token is not None
        token = trial.lease_token
        try:
            self._with_store(
                lambda: self.store.release(trial.id, token), "handing the trial back", finish=True
            )
            self.log.info("trial %s handed back to the queue", trial.id)
        except (LeaseLost, NotFound) as exc:
            self.log.info("trial %s not handed back: %s", trial.id, exc)
        except _Stopping:
            self.log.warning("trial %s not handed back (store unreachable); its lease will expire", trial.id)

    def _report(
        self, trial: Trial, token: str, result: TrialResult, *, claim_next: bool
    ) -> tuple[Trial | None, Trial | _Unclaimed | None]:
        """Report our trial: ``(reported, next)``. With ``claim_next``, report and claim the next trial in
        one store call (``Store.report_and_claim``; ``next``: the trial, or None when there was no work),
        else ``next`` is :data:`UNCLAIMED`. A report the store refuses, or one lost while stopping, gives
        ``(None, UNCLAIMED)``: nothing claimed (the loop claims as usual)."""
        opts = self.options

        def call() -> tuple[Trial, Trial | _Unclaimed | None]:
            if not claim_next:
                return self.store.report(trial.id, token, result), UNCLAIMED
            return self.store.report_and_claim(
                trial.id,
                token,
                result,
                self.id,
                opts.lease_seconds,
                search_id=opts.search_id,
                allow_code=opts.allow_code,
            )

        try:
            return self._with_store(call, "report", finish=True)
        except (LeaseLost, NotFound) as exc:
            self.log.warning("trial %s result dropped: %s", trial.id, exc)
        except _Stopping:
            self.log.error("trial %s result lost: the store stayed unreachable while stopping", trial.id)
        return None, UNCLAIMED


def _label(trial: Trial, search: Search) -> str:
    return f"trial {trial.id} ({search.name} #{trial.number}, attempt {trial.attempts})"


def _outcome_text(trial: Trial, search: Search, run_s: float) -> str:
    if trial.state == TrialState.DONE:
        return f"done {search.objective_metric}={trial.value:.4f} in {run_s:.1f}s"
    if trial.state == TrialState.PRUNED:
        return f"pruned after {len(trial.history)} epoch(s) in {run_s:.1f}s"
    first_line = (trial.error or "").splitlines()[0] if trial.error else ""
    return f"{trial.state} in {run_s:.1f}s: {first_line}"
