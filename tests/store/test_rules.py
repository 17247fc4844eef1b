"""The finish rules (hyperhive.store.rules) on their own: what a trial turning final does to its search,
the same function both backends apply."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hyperhive.models import Search, SearchStatus, TrialCounts, TrialState
from hyperhive.store.rules import (
    Counters,
    Finished,
    Verdict,
    consecutive_failures_error,
    counters_after,
    no_success_error,
    search_error_message,
    settle,
    verdict,
)


def search(**kw: object) -> Search:
    base = Search(
        id="s1",
        name="s",
        owner=None,
        status=SearchStatus.RUNNING,
        document={},
        algorithm="random",
        max_trials=4,
        seed=1,
        objective_metric="accuracy",
        objective_mode="max",
        max_consecutive_failures=3,
        max_retries=1,
        created_at=0.0,
        updated_at=0.0,
        counts=TrialCounts(running=2),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_done_counts_resets_failures_and_becomes_best() -> None:
    s = search(
        consecutive_failures=2, best_trial_id="t0", best_value=0.5, counts=TrialCounts(running=2, done=1)
    )
    out = settle(s, Finished(TrialState.DONE, "t1", 0.7))
    assert out.counters == Counters(TrialCounts(running=1, done=2), 0, "t1", 0.7)
    assert out.verdict is None


@pytest.mark.parametrize(("mode", "value", "best"), [("max", 0.4, "t0"), ("min", 0.4, "t1")])
def test_best_follows_the_objective_mode(mode: str, value: float, best: str) -> None:
    s = search(objective_mode=mode, best_trial_id="t0", best_value=0.5)
    assert settle(s, Finished(TrialState.DONE, "t1", value)).counters.best_trial_id == best


def test_pruned_keeps_the_failure_streak_and_is_never_best() -> None:
    s = search(consecutive_failures=2)
    out = settle(s, Finished(TrialState.PRUNED, "t1", 0.99))
    assert out.counters == Counters(TrialCounts(running=1, pruned=1), 2, None, None)


def test_failures_in_a_row_fail_the_search_and_cancel_its_trials() -> None:
    s = search(consecutive_failures=2)
    out = settle(s, Finished(TrialState.FAILED, "t1", error="boom"))
    assert out.counters.consecutive_failures == 3
    assert out.verdict == Verdict(
        SearchStatus.FAILED, consecutive_failures_error(3, "boom"), cancel_open=True
    )
    assert out.verdict.error == "3 consecutive trials failed; last error: boom"


def test_a_search_error_fails_the_search_at_once() -> None:
    message = search_error_message(7, "no such dataset")
    out = settle(search(), Finished(TrialState.FAILED, "t1", error="x", search_error=message))
    assert out.verdict == Verdict(SearchStatus.FAILED, message, cancel_open=True)
    assert message == "trial 7 failed because of the search document: no such dataset"


def test_spent_budget_completes_with_a_done_trial() -> None:
    s = search(max_trials=2, counts=TrialCounts(running=1, done=1))
    assert settle(s, Finished(TrialState.FAILED, "t1", error="e")).verdict == Verdict(SearchStatus.COMPLETED)


def test_spent_budget_without_a_done_trial_fails_naming_the_last_error() -> None:
    s = search(max_trials=2, counts=TrialCounts(running=1, pruned=1))
    asked: list[bool] = []

    def last() -> str:
        asked.append(True)
        return "older error"

    failed = settle(s, Finished(TrialState.FAILED, "t1", error="mine"), last_error=last)
    assert failed.verdict == Verdict(
        SearchStatus.FAILED, "no trial succeeded (1 failed, 1 pruned); last error: mine"
    )
    assert not asked  # the finishing failure is the last error: nothing read
    pruned = settle(s, Finished(TrialState.PRUNED, "t1"), last_error=last)
    assert pruned.verdict == Verdict(
        SearchStatus.FAILED, no_success_error(TrialCounts(pruned=2), "older error")
    )
    assert asked == [True]


def test_a_final_search_keeps_its_status_while_its_counters_move() -> None:
    s = search(status=SearchStatus.CANCELLED, max_trials=1, counts=TrialCounts(running=1))
    out = settle(s, Finished(TrialState.FAILED, "t1", error="e", search_error="m"))
    assert out.counters.counts == TrialCounts(failed=1)
    assert out.verdict is None


def test_verdict_without_a_finishing_trial_judges_the_budget_alone() -> None:
    spent = Counters(TrialCounts(cancelled=2), consecutive_failures=9)
    kw = {"max_trials": 2, "max_consecutive_failures": 3}
    assert verdict(SearchStatus.RUNNING, spent, **kw) == Verdict(
        SearchStatus.FAILED, "no trial succeeded (2 cancelled)"
    )
    assert verdict(SearchStatus.RUNNING, replace(spent, counts=TrialCounts(cancelled=1)), **kw) is None


def test_counters_after_is_pure() -> None:
    before = Counters(TrialCounts(running=1))
    counters_after(before, Finished(TrialState.DONE, "t", 1.0), "max")
    assert before == Counters(TrialCounts(running=1))
