"""The worker reports a trial and claims its next one in one store call (Store.report_and_claim),
except at max_trials; a stop that lands during that call hands the new trial back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workerkit import StoreProxy, create_search, function_doc, worker_options

from hyperhive.models import TrialState
from hyperhive.store import SQLiteStore
from hyperhive.workers.daemon import ExitReason, Worker


class Counting(StoreProxy):
    """Counts claims and report calls; ``after_report_and_claim`` runs after each combined call."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.calls = {"claim": 0, "report": 0, "report_and_claim": 0}
        self.after_report_and_claim: Any = None

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["claim"] += 1
        return self._store.claim(*args, **kwargs)

    def report(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["report"] += 1
        return self._store.report(*args, **kwargs)

    def report_and_claim(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["report_and_claim"] += 1
        got = self._store.report_and_claim(*args, **kwargs)
        if self.after_report_and_claim is not None:
            self.after_report_and_claim(got)
        return got


def test_one_claim_then_one_call_per_trial(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=5, function="hyperhive.demo_objectives:quadratic"))
    proxy = Counting(store)
    worker = Worker(proxy, worker_options(tmp_path))  # type: ignore[arg-type]
    assert worker.work() == ExitReason.BURST
    assert proxy.calls == {"claim": 1, "report": 0, "report_and_claim": 5}
    s = store.get_search(search.id)
    assert (s.status, s.counts.done, s.counts.total) == ("completed", 5, 5)
    assert worker.trials_run == 5


def test_at_max_trials_the_last_report_claims_nothing(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=5, function="hyperhive.demo_objectives:quadratic"))
    proxy = Counting(store)
    worker = Worker(proxy, worker_options(tmp_path, burst=False, max_trials=2))  # type: ignore[arg-type]
    assert worker.work() == ExitReason.MAX_TRIALS
    assert proxy.calls == {"claim": 1, "report": 1, "report_and_claim": 1}
    s = store.get_search(search.id)
    assert (s.counts.done, s.counts.running, s.counts.total) == (2, 0, 2), "no trial left claimed"


def test_a_stop_during_report_and_claim_hands_the_new_trial_back(store: SQLiteStore, tmp_path: Path) -> None:
    search = create_search(store, function_doc(max_trials=5, function="hyperhive.demo_objectives:quadratic"))
    proxy = Counting(store)
    worker = Worker(proxy, worker_options(tmp_path, burst=False))  # type: ignore[arg-type]
    handed: list[Any] = []

    def stop(got: Any) -> None:  # a SIGTERM landing while the store call ran
        handed.append(got[1])
        worker.request_stop()

    proxy.after_report_and_claim = stop
    assert worker.work() == ExitReason.STOP_REQUESTED
    [nxt] = handed
    assert nxt is not None
    back = store.get_trial(nxt.id)
    assert back.state == TrialState.QUEUED and back.attempts == 0 and back.config == nxt.config
    s = store.get_search(search.id)
    assert (s.counts.done, s.counts.queued, s.counts.running) == (1, 1, 0)
