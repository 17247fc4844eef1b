"""Worker processes killed or stopped in the middle of a Keras trial."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from workerkit import GOOD_TRAINING, create_search, keras_doc, run_worker, start_worker_process, wait_until

from hyperhive.models import TrialState
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.slow

# long enough that the worker is still training when the test acts on it after the first epoch
LONG_TRAINING = {**GOOD_TRAINING, "epochs": 8, "batch_size": 32}


def _first_epoch_saved(store: SQLiteStore, search_id: str) -> bool:
    return any(t.state == TrialState.RUNNING and t.history for t in store.list_trials(search_id))


def test_sigkill_mid_trial_requeues_it_for_another_worker(store: SQLiteStore, tmp_path: Path) -> None:
    # one trial: the killed one, run again by the second worker (not a new one in its place)
    search = create_search(store, keras_doc(training=LONG_TRAINING, max_trials=1, max_retries=1))
    proc = start_worker_process(
        store.url, tmp_path / "w.log", "--cpu", "--lease-seconds", "2", "--heartbeat-seconds", "0.5"
    )
    try:
        wait_until(lambda: _first_epoch_saved(store, search.id), timeout=90)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
    (killed,) = store.list_trials(search.id)
    assert killed.state == TrialState.RUNNING and len(killed.history) >= 1
    wait_until(
        lambda: store.requeue_expired() or store.get_trial(killed.id).state == TrialState.QUEUED, timeout=10
    )
    assert store.get_trial(killed.id).state == TrialState.QUEUED

    worker = run_worker(store, tmp_path)  # another worker, in this process
    assert worker.trials_run == 1
    again = store.get_trial(killed.id)
    assert (again.state, again.attempts, again.worker_id) == (TrialState.DONE, 2, worker.id)
    assert [row["epoch"] for row in again.history] == list(range(1, 9))  # trained from scratch
    s = store.get_search(search.id)
    assert (s.status, s.counts.done, s.counts.total, s.counts.failed) == ("completed", 1, 1, 0)
    assert [t.id for t in store.list_trials(search.id)] == [killed.id]


def test_sigterm_mid_trial_hands_it_back_and_exits_0(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, keras_doc(training=LONG_TRAINING, max_trials=1))
    log = tmp_path / "w.log"
    proc = start_worker_process(store.url, log, "--cpu", "--heartbeat-seconds", "0.5")
    try:
        wait_until(lambda: _first_epoch_saved(store, search.id), timeout=90)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        stop_s = time.monotonic() - t0
    finally:
        proc.kill()
    (t,) = store.list_trials(search.id)
    assert (t.state, t.lease_token, t.attempts) == (TrialState.QUEUED, None, 0)
    assert t.history and len(t.history) < 8  # stopped mid-training, progress kept for the dashboard
    assert stop_s < 5
    text = log.read_text()
    assert "SIGTERM: finishing up" in text and "handed back to the queue" in text and "stop_requested" in text
    assert store.list_workers()[0].status == "stopped"
