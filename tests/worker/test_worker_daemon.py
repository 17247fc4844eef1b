"""The daemon loop with function objectives (no Keras): exits, failures, store outages, leases, signals,
the GPU supervisor and the CLI's errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner
from workerkit import (
    FlakyStore,
    create_search,
    function_doc,
    hyperhive_cmd,
    run_worker,
    start_worker_process,
    subprocess_env,
    wait_until,
    worker_options,
)

from hyperhive.cli import app
from hyperhive.models import TrialState
from hyperhive.store import SQLiteStore
from hyperhive.workers import daemon
from hyperhive.workers.daemon import ExitReason, Worker


def test_function_search_completes_and_records_provenance(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=4))
    worker = run_worker(store, tmp_path)
    assert worker.exit_reason == ExitReason.BURST
    assert worker.trials_run == 4
    s = store.get_search(search.id)
    assert s.status == "completed" and s.counts.done == 4 and s.counts.total == 4
    for t in store.list_trials(search.id):
        x = t.config["params"]["x"]
        assert t.value == pytest.approx((x - 1) ** 2)
        assert t.info["seed"] == t.seed and t.info["worker"] == worker.id
        assert t.info["host"] and t.info["versions"]["python"]
    assert [w.status for w in store.list_workers()] == ["stopped"]


def test_max_trials_idle_and_search_finished_exits(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=3))
    worker = run_worker(store, tmp_path, burst=False, max_trials=2)
    assert (worker.exit_reason, worker.trials_run) == (ExitReason.MAX_TRIALS, 2)
    worker = run_worker(store, tmp_path, burst=False, search_id=search.id)
    assert (worker.exit_reason, worker.trials_run) == (ExitReason.SEARCH_FINISHED, 1)
    t0 = time.monotonic()
    worker = run_worker(store, tmp_path, burst=False, idle_exit=0.3)
    assert worker.exit_reason == ExitReason.IDLE
    assert 0.3 <= time.monotonic() - t0 < 3


def test_a_raising_objective_fails_its_trial_with_a_short_traceback(
    store: SQLiteStore, tmp_path: Path
) -> None:
    bad = create_search(store, {**function_doc(max_trials=2, function="hh_objectives:boom"), "name": "bad"})
    good = create_search(store, function_doc(max_trials=2))
    worker = run_worker(store, tmp_path)
    assert worker.trials_run == 4
    for t in store.list_trials(bad.id):
        assert t.state == TrialState.FAILED
        assert t.error.startswith("RuntimeError: objective exploded at x=")
        assert "Traceback" in t.error and "in inner" in t.error
        assert len(t.error.splitlines()) <= 21
    assert store.get_search(good.id).counts.done == 2


def test_function_outside_allowed_prefixes_is_refused(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=1, function="os:getcwd"))
    # a prefix must match at a dot: "hh_obj" does not allow "hh_objectives"
    run_worker(store, tmp_path, allow_objective=["hyperhive.demo_objectives", "hh_obj"])
    (t,) = store.list_trials(search.id)
    assert t.state == TrialState.FAILED
    assert "refused" in t.error and "'os'" in t.error and "--allow-objective os" in t.error
    assert "hh_obj" not in t.error  # the allow-list itself is not shown to the submitter
    assert "Traceback" not in t.error
    other = create_search(store, function_doc(max_trials=1))
    run_worker(store, tmp_path, allow_objective=["hh_obj"])
    assert "refused" in store.list_trials(other.id)[0].error


def test_results_are_kept_until_the_store_is_back(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    search = create_search(store, function_doc(max_trials=2))
    flaky = FlakyStore(store, claim=2, report_and_claim=3, heartbeat=1)
    caplog.set_level(logging.INFO, "hyperhive.worker")
    worker = Worker(flaky, worker_options(tmp_path))  # type: ignore[arg-type]
    assert worker.work() == ExitReason.BURST
    assert flaky.calls["report_and_claim"] == 2 + 3, "each trial's report (and next claim), retried whole"
    s = store.get_search(search.id)
    assert (s.counts.done, s.counts.total, s.status) == (2, 2, "completed")
    text = caplog.text
    assert "store unreachable during report" in text and "store reachable again" in text


def test_a_store_that_stays_down_ends_the_worker(store: SQLiteStore, tmp_path: Path) -> None:
    create_search(store, function_doc(max_trials=1))
    flaky = FlakyStore(store, claim=10_000)
    worker = Worker(flaky, worker_options(tmp_path, store_patience=0.5))  # type: ignore[arg-type]
    t0 = time.monotonic()
    assert worker.work() == ExitReason.STORE_LOST
    assert time.monotonic() - t0 < 5


def test_a_report_after_the_lease_was_lost_is_dropped_and_the_trial_rerun(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    search = create_search(store, function_doc(max_trials=1, sleep=1.5))
    caplog.set_level(logging.INFO, "hyperhive.worker")

    def expire() -> None:  # the lease (1.2 s) runs out while the objective sleeps: another process sweeps
        time.sleep(1.3)
        assert store.requeue_expired() == 1

    sweeper = threading.Thread(target=expire)
    sweeper.start()
    worker = run_worker(store, tmp_path, lease_seconds=1.2, heartbeat_seconds=30)
    sweeper.join()
    (t,) = store.list_trials(search.id)
    assert (t.state, t.attempts, worker.trials_run) == (TrialState.DONE, 2, 2)
    assert store.get_search(search.id).counts.done == 1
    assert "result dropped" in caplog.text


def test_a_cancelled_search_stops_its_running_trial(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    search = create_search(store, function_doc(max_trials=1, sleep=0.8))
    caplog.set_level(logging.INFO, "hyperhive.worker")
    timer = threading.Timer(0.3, store.cancel_search, args=(search.id,))
    timer.start()
    run_worker(store, tmp_path, heartbeat_seconds=0.1)
    timer.join()
    (t,) = store.list_trials(search.id)
    assert t.state == TrialState.CANCELLED and t.value is None
    assert "stopped: cancelled; nothing reported" in caplog.text


@pytest.mark.slow
def test_function_workers_never_import_keras(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=2, function="hh_objectives:report_modules"))
    t0 = time.monotonic()
    r = subprocess.run(
        hyperhive_cmd("worker", "--store", store.url, "--burst", "--allow-objective", "hh_objectives"),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    for t in store.list_trials(search.id):
        assert t.state == TrialState.DONE
        assert (t.metrics["keras"], t.metrics["tensorflow"]) == (False, False)
    assert "2 trial(s) done in the last" in r.stderr  # quick trials: one INFO line sums them up
    assert time.monotonic() - t0 < 20


@pytest.mark.slow
def test_sigterm_hands_a_function_trial_back(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=1, sleep=60))
    proc = start_worker_process(store.url, tmp_path / "w.log", "--cpu")
    try:
        wait_until(lambda: store.get_search(search.id).counts.running == 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # the 60 s function was interrupted, not waited for
    finally:
        proc.kill()
    (t,) = store.list_trials(search.id)
    assert (t.state, t.attempts, t.lease_token) == (TrialState.QUEUED, 0, None)
    assert store.list_workers()[0].status == "stopped"
    assert "handed back to the queue" in (tmp_path / "w.log").read_text()


@pytest.mark.slow
def test_gpu_supervisor_restarts_a_dead_worker_and_forwards_sigterm(
    store: SQLiteStore, tmp_path: Path
) -> None:
    search = create_search(store, function_doc(max_trials=4, sleep=60))
    proc = start_worker_process(store.url, tmp_path / "sup.log", "--gpus", "0,1", "--lease-seconds", "60")
    try:
        workers = wait_until(lambda: ws if len(ws := store.list_workers()) >= 2 else None)
        assert sorted(w.gpus[0] for w in workers) == ["0", "1"]
        wait_until(lambda: store.get_search(search.id).counts.running == 2)
        victim = workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        replacement = wait_until(
            lambda: [w for w in store.list_workers() if w.pid not in {x.pid for x in workers}], timeout=30
        )
        assert replacement[0].gpus == victim.gpus
        wait_until(lambda: store.get_search(search.id).counts.running == 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    counts = store.get_search(search.id).counts
    # the two live workers handed their trials back; the killed one's trial waits for its lease to expire
    assert (counts.queued, counts.running, counts.total) == (2, 1, 3)
    log = (tmp_path / "sup.log").read_text()
    assert "died (code -9); restarting" in log


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["worker", "--store", "foo://x"], 2, "unknown store URL scheme"),
        (["worker", "--gpus", "0", "--cpu"], 2, "not both"),
        (["worker", "--gpus", "0,,1"], 2, "GPU ids separated by commas"),
        (["worker", "--lease-seconds", "5", "--heartbeat-seconds", "10"], 2, "must be shorter than"),
        (["worker", "--lease-seconds", "0.5"], 2, "lease_seconds"),
        (["worker", "--log-level", "LOUD"], 2, "--log-level"),
        # a mistyped SQLite path: refused, not a new empty store waited on forever
        (["worker", "--store", "sqlite:///no/such/dir/hh.db", "--burst"], 2, "no store at"),
        (["retrain", "abc", "--store", "sqlite:///no/such/dir/hh.db"], 2, "no store at"),
    ],
)
def test_worker_cli_errors_are_one_line(
    args: list[str], code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exit_code, output = _cli(*args)
    assert exit_code == code
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "no").exists()


def test_cli_errors_that_need_a_store(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS"):  # --cpu sets them; restored after the test
        monkeypatch.setenv(name, "")
    code, out = _cli("worker", "--store", store.url, "--search", "nope", "--cpu")
    assert code == 1 and "search 'nope' not found" in out
    assert [w.status for w in store.list_workers()] == ["stopped"]
    code, out = _cli("retrain", "nope", "--store", store.url)
    assert code == 1 and "not found" in out
    fn = create_search(store, function_doc(max_trials=1))
    code, out = _cli("retrain", fn.id, "--store", store.url)
    assert code == 1 and "function objective" in out
    from workerkit import keras_doc

    ks = create_search(store, keras_doc())
    code, out = _cli("retrain", ks.id, "--store", store.url)
    assert code == 1 and "no done trial yet" in out
    code, out = _cli("retrain", ks.id, "--store", store.url, "--out", str(tmp_path / "m.txt"))
    assert code == 1 and ".keras" in out


def test_worker_log_lines_name_the_worker(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create_search(store, function_doc(max_trials=2))
    caplog.set_level(logging.DEBUG, "hyperhive.worker")
    worker = run_worker(store, tmp_path)
    trial_lines = [r for r in caplog.records if " done loss=" in r.getMessage()]
    assert len(trial_lines) == 2
    assert all(r.getMessage().startswith(f"[{worker.id}] trial ") for r in trial_lines)
    assert all(r.levelno == logging.DEBUG for r in trial_lines), "quick trials: DEBUG"
    [summary] = [r for r in caplog.records if "done in the last" in r.getMessage()]
    assert summary.levelno == logging.INFO and "2 trial(s)" in summary.getMessage()


def test_a_trial_that_takes_a_while_gets_its_own_info_line(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "QUICK_TRIAL_SECONDS", 0.0)  # every trial "takes a while"
    create_search(store, function_doc(max_trials=2))
    caplog.set_level(logging.INFO, "hyperhive.worker")
    run_worker(store, tmp_path)
    assert len([r for r in caplog.records if " done loss=" in r.getMessage()]) == 2
    assert not [r for r in caplog.records if "done in the last" in r.getMessage()]


def test_quick_trials_are_summed_up_every_interval(
    store: SQLiteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "QUICK_SUMMARY_SECONDS", 0.0)  # a summary after every trial
    create_search(store, function_doc(max_trials=3))
    caplog.set_level(logging.INFO, "hyperhive.worker")
    run_worker(store, tmp_path)
    summaries = [r.getMessage() for r in caplog.records if "done in the last" in r.getMessage()]
    assert len(summaries) == 3 and all("1 trial(s)" in m for m in summaries), "nothing counted twice"


def test_a_search_deleted_right_after_the_claim_is_dropped(store: SQLiteStore, tmp_path: Path) -> None:
    """A delete landing between the claim and reading the search must not kill the worker."""
    doomed = create_search(store, function_doc(max_trials=1))
    survivor = create_search(store, function_doc(max_trials=2))
    real_claim = store.claim

    def claim_then_delete(*args: object, **kwargs: object) -> object:
        trial = real_claim(*args, **kwargs)  # type: ignore[arg-type]
        if trial is not None and trial.search_id == doomed.id:
            store.delete_search(doomed.id)
        return trial

    store.claim = claim_then_delete  # type: ignore[method-assign]
    worker = run_worker(store, tmp_path)
    assert worker.exit_reason == ExitReason.BURST
    assert store.get_search(survivor.id).counts.done == 2


def test_a_stop_that_lands_between_claim_and_function_still_stops_it(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Regression (seen in CI): SIGTERM after the claim but before the function started only set the trial's
    stop flag, so a 60 s objective ran to its end and the supervisor's SIGTERM timed out. The function
    must not start once the flag is set; the trial is handed back."""
    from hyperhive.workers.execution import ExecutionContext, StopReason, TrialControl, execute_trial

    search = create_search(store, function_doc(max_trials=1, sleep=60))
    trial = store.claim("w-race", 60.0, search_id=search.id)
    assert trial is not None
    control = TrialControl()
    control.stop(StopReason.SHUTDOWN)  # what the signal handler does when no function is running yet
    ctx = ExecutionContext(store, "w-race", ["hh_objectives"], tmp_path)
    t0 = time.monotonic()
    assert execute_trial(trial, store.get_search(search.id), ctx, control) is None  # nothing to report
    assert time.monotonic() - t0 < 30 and control.reason == StopReason.SHUTDOWN
