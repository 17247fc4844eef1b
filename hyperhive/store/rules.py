"""What a trial turning final does to its search, written once for every backend.

Pure functions, no database: the backends apply them (SQLite inside its write transaction, MongoDB
as counter deltas on the search document followed by conditional updates; see
:mod:`hyperhive.store.mongo`). The rules (see "Budget and completion" in :mod:`hyperhive.store.base`):

- the trial leaves ``running`` and counts in its final state;
- ``failed`` adds one to the consecutive failures, ``done`` resets them, ``pruned``/``cancelled`` keep them;
- a ``done`` trial with a better value becomes the search's best trial;
- a runnable search fails at once when a failure is a *search error* (the document cannot run) or
  when ``max_consecutive_failures`` trials failed in a row; its open trials are then cancelled;
- else, once every slot of the budget is finished, it is ``completed`` if a trial is ``done``,
  otherwise ``failed`` with :func:`no_success_error`;
- a final search (cancelled, failed, completed) keeps its status: only its counters move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyperhive.models import Search, SearchStatus, TrialCounts, TrialState, is_better


def no_success_error(counts: TrialCounts, last_error: str | None) -> str:
    """The error of a search whose budget ended without a ``done`` trial."""
    parts = [
        f"{n} {name}"
        for name, n in (("failed", counts.failed), ("pruned", counts.pruned), ("cancelled", counts.cancelled))
        if n
    ]
    text = f"no trial succeeded ({', '.join(parts) or 'none finished'})"
    return f"{text}; last error: {last_error}" if last_error else text


def search_error_message(number: int, error: str | None) -> str:
    """The error of a search failed at once by a trial that failed because of the document."""
    return f"trial {number} failed because of the search document: {error}"


def consecutive_failures_error(consecutive: int, last_error: str | None) -> str:
    """The error of a search failed by ``max_consecutive_failures`` failures in a row."""
    return f"{consecutive} consecutive trials failed; last error: {last_error}"


def worker_lost_error(attempts: int, max_retries: int, worker_id: str | None) -> str:
    """The error of a trial whose lease expired with no retry left."""
    return f"worker lost: lease expired on attempt {attempts} of {max_retries + 1} (worker {worker_id})"


@dataclass(frozen=True)
class Finished:
    """A trial turning final, as the rules see it."""

    state: TrialState
    trial_id: str | None = None
    value: float | None = None
    error: str | None = None
    search_error: str | None = None
    """The search's error when this failure fails it at once (:func:`search_error_message`), else ``None``."""


@dataclass(frozen=True)
class Counters:
    """The counters of a search that reports move."""

    counts: TrialCounts
    consecutive_failures: int = 0
    best_trial_id: str | None = None
    best_value: float | None = None


@dataclass(frozen=True)
class Verdict:
    """A status change: the new status, its error, and whether the open trials are to be cancelled."""

    status: SearchStatus
    error: str | None = None
    cancel_open: bool = False


def count_changes(state: TrialState) -> dict[TrialState, int]:
    """How the state counts move when a running trial turns ``state``."""
    return {TrialState.RUNNING: -1, state: 1}


def consecutive_change(state: TrialState) -> int | None:
    """``+1`` when a trial turning ``state`` adds a consecutive failure, ``0`` when it resets them
    (``done``), ``None`` when it leaves them as they are."""
    if state == TrialState.FAILED:
        return 1
    if state == TrialState.DONE:
        return 0
    return None


def becomes_best(finished: Finished, best_value: float | None, mode: str) -> bool:
    """Whether the finished trial is the search's new best trial."""
    return (
        finished.state == TrialState.DONE
        and finished.value is not None
        and is_better(finished.value, best_value, mode)
    )


def counters_after(before: Counters, finished: Finished, mode: str) -> Counters:
    """The search's counters once the running trial ``finished`` is final."""
    moved = dict(before.counts.__dict__)  # its fields (one new TrialCounts, not one per change)
    for state, n in count_changes(finished.state).items():
        moved[str(state)] += n
    counts = TrialCounts(**moved)
    change = consecutive_change(finished.state)
    consecutive = before.consecutive_failures
    consecutive = consecutive + 1 if change == 1 else 0 if change == 0 else consecutive
    best_id, best_value = before.best_trial_id, before.best_value
    if becomes_best(finished, best_value, mode):
        best_id, best_value = finished.trial_id, finished.value
    return Counters(counts, consecutive, best_id, best_value)


def verdict(
    status: SearchStatus,
    counters: Counters,
    *,
    max_trials: int,
    max_consecutive_failures: int,
    finished: Finished | None = None,
    last_error: Callable[[], str | None] = lambda: None,
) -> Verdict | None:
    """The status a search with these counters (after ``finished``, if given, was counted) moves to,
    or ``None`` when it keeps its status. ``last_error`` reads the error of the search's most recently
    failed trial; it is called only when the budget ended with no ``done`` trial and the finishing
    trial is not itself a failure."""
    if status.is_final:
        return None
    if finished is not None and finished.state == TrialState.FAILED:
        if finished.search_error is not None:
            return Verdict(SearchStatus.FAILED, finished.search_error, cancel_open=True)
        if counters.consecutive_failures >= max_consecutive_failures:
            error = consecutive_failures_error(counters.consecutive_failures, finished.error)
            return Verdict(SearchStatus.FAILED, error, cancel_open=True)
    counts = counters.counts
    if counts.finished < max_trials:
        return None
    if counts.done:
        return Verdict(SearchStatus.COMPLETED)
    failed_now = finished is not None and finished.state == TrialState.FAILED
    last = (finished.error if finished is not None else None) if failed_now else last_error()
    return Verdict(SearchStatus.FAILED, no_success_error(counts, last or None))


@dataclass(frozen=True)
class Settlement:
    """What a trial turning final does to its search: new counters and, maybe, a new status."""

    counters: Counters
    verdict: Verdict | None


def settle(
    search: Search, finished: Finished, *, last_error: Callable[[], str | None] = lambda: None
) -> Settlement:
    """The one rule: ``search`` (as stored before) sees its running trial ``finished`` turn final (see
    the module docstring)."""
    before = Counters(search.counts, search.consecutive_failures, search.best_trial_id, search.best_value)
    after = counters_after(before, finished, search.objective_mode)
    return Settlement(
        after,
        verdict(
            search.status,
            after,
            max_trials=search.max_trials,
            max_consecutive_failures=search.max_consecutive_failures,
            finished=finished,
            last_error=last_error,
        ),
    )
