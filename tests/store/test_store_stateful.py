"""The store contract as a state machine: random sequences of every store operation, checked after each
step against a model of what the contract says the state must be (both backends).

The model is deliberately small: per search its status, budget, consecutive failures, best trial and
fairness keys; per trial its state, lease token, lease expiry, attempts and the token that reported it.
After every step the store must agree with the model exactly, and its own counters must agree with its
trials (counts by state sum to the trials, ``total <= max_trials``, numbers ``0..n-1``, ``completed``
iff every slot finished and one is done, ``best_trial_id`` the best done trial).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from storekit import FakeClock, assert_backend_consistent, make_store, search_doc

from hyperhive.errors import Conflict, LeaseLost, NotFound
from hyperhive.models import SearchStatus, TrialResult, TrialState, is_better
from hyperhive.search_spaces import validate
from hyperhive.store.base import hash_token

OPEN = (TrialState.QUEUED, TrialState.RUNNING)
ALGORITHMS = ["random", "anneal", {"type": "tpe", "n_startup_trials": 2}]


@dataclass
class MSearch:
    id: str
    max_trials: int
    max_retries: int
    k: int
    mode: str
    created_at: float
    status: SearchStatus = SearchStatus.PENDING
    consecutive: int = 0
    best_id: str | None = None
    best_value: float | None = None
    last_claim_at: float = 0.0
    trials: list[str] = field(default_factory=list)  # by number


@dataclass
class MTrial:
    id: str
    search_id: str
    number: int
    state: TrialState
    token: str | None
    expires: float | None
    attempts: int
    updated_at: float
    value: float | None = None
    reported_by: str | None = None  # hash of the token whose report finished it


class _Crash(Exception):
    """A process dying half-way through a MongoDB two-step change."""


class StoreMachine(RuleBasedStateMachine):
    tokens = Bundle("tokens")  # (trial_id, token): every lease token ever handed out

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend
        self.tmp = tempfile.mkdtemp(prefix="hh-stateful-")
        self.store, self._cleanup = make_store(backend, Path(self.tmp))
        self.clock = FakeClock()
        self.store.clock = self.clock
        self.searches: dict[str, MSearch] = {}
        self.trials: dict[str, MTrial] = {}
        self.deleted: set[str] = set()  # trial ids of deleted searches
        self.feeds: dict[str, tuple[Any, dict[str, Any]]] = {}  # search id -> (cursor, trials read)

    def teardown(self) -> None:
        self._cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ model transitions
    def _open(self, s: MSearch) -> list[MTrial]:
        return [self.trials[t] for t in s.trials if self.trials[t].state in OPEN]

    def _finished(self, s: MSearch) -> int:
        return sum(1 for t in s.trials if self.trials[t].state.is_final)

    def _finish(
        self,
        t: MTrial,
        state: TrialState,
        value: float | None,
        reported_by: str | None,
        *,
        fails_search: bool = False,
    ) -> None:
        s = self.searches[t.search_id]
        now = self.clock()
        t.state, t.token, t.expires, t.value, t.reported_by, t.updated_at = (
            state, None, None, value, reported_by, now,
        )  # fmt: skip
        if state == TrialState.FAILED:
            s.consecutive += 1
        elif state == TrialState.DONE:
            s.consecutive = 0
            assert value is not None
            if is_better(value, s.best_value, s.mode):
                s.best_id, s.best_value = t.id, value
        if s.status.is_final:
            return
        if state == TrialState.FAILED and (fails_search or s.consecutive >= s.k):
            s.status = SearchStatus.FAILED
            self._cancel_open(s)
        elif self._finished(s) >= s.max_trials:
            any_done = any(self.trials[x].state == TrialState.DONE for x in s.trials)
            s.status = SearchStatus.COMPLETED if any_done else SearchStatus.FAILED

    def _cancel_open(self, s: MSearch) -> None:
        for t in self._open(s):
            t.state, t.token, t.expires, t.updated_at = TrialState.CANCELLED, None, None, self.clock()

    def _sweep(self) -> int:
        """The lease sweep: oldest expiry first, then number (the order the contract fixes)."""
        now = self.clock()
        expired = [t for t in self.trials.values() if t.state == TrialState.RUNNING and t.expires < now]  # type: ignore[operator]
        changed = 0
        for t in sorted(expired, key=lambda t: (t.expires, t.number)):
            if t.state != TrialState.RUNNING:  # cancelled by a failure earlier in this sweep
                continue
            s = self.searches[t.search_id]
            if t.attempts <= s.max_retries:
                t.state, t.token, t.expires, t.updated_at = TrialState.QUEUED, None, None, now
            else:
                self._finish(t, TrialState.FAILED, None, None)
            changed += 1
        return changed

    def _runnable(self, s: MSearch) -> bool:
        return s.status in (SearchStatus.PENDING, SearchStatus.RUNNING)

    # ------------------------------------------------------------------ rules: searches
    @initialize(
        max_trials=st.integers(1, 4),
        retries=st.integers(0, 2),
        k=st.integers(1, 3),
        mode=st.sampled_from(["min", "max"]),
        algorithm=st.sampled_from(ALGORITHMS),
    )
    def first_search(self, max_trials: int, retries: int, k: int, mode: str, algorithm: Any) -> None:
        self.create(max_trials, retries, k, mode, algorithm)

    @precondition(lambda self: len(self.searches) < 3)
    @rule(
        max_trials=st.integers(1, 4),
        retries=st.integers(0, 2),
        k=st.integers(1, 3),
        mode=st.sampled_from(["min", "max"]),
        algorithm=st.sampled_from(ALGORITHMS),
    )
    def create(self, max_trials: int, retries: int, k: int, mode: str, algorithm: Any) -> None:
        objective = {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "score",
            "mode": mode,
        }
        doc = search_doc(
            max_trials=max_trials,
            max_retries=retries,
            max_consecutive_failures=k,
            objective=objective,
            algorithm=algorithm,
        )
        s = self.store.create_search(validate(doc))
        self.searches[s.id] = MSearch(s.id, max_trials, retries, k, mode, s.created_at)

    @precondition(lambda self: self.searches)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        s = self.searches[data.draw(st.sampled_from(list(self.searches)))]
        if not s.status.is_final:
            s.status = SearchStatus.CANCELLED
            self._cancel_open(s)
        got = self.store.cancel_search(s.id)
        assert got.status == s.status

    @precondition(lambda self: self.searches)
    @rule(data=st.data(), n=st.integers(1, 2))
    def extend(self, data: st.DataObject, n: int) -> None:
        s = self.searches[data.draw(st.sampled_from(list(self.searches)))]
        if s.status == SearchStatus.CANCELLED:
            with pytest.raises(Conflict):
                self.store.extend_search(s.id, n)
            return
        s.max_trials += n
        if s.status in (SearchStatus.COMPLETED, SearchStatus.FAILED):
            s.status, s.consecutive = SearchStatus.RUNNING, 0
        got = self.store.extend_search(s.id, n)
        assert got.status == s.status and got.max_trials == s.max_trials and got.error is None

    @precondition(lambda self: self.searches)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        s = self.searches.pop(data.draw(st.sampled_from(list(self.searches))))
        self.feeds.pop(s.id, None)
        for tid in s.trials:
            self.deleted.add(tid)
            del self.trials[tid]
        self.store.delete_search(s.id)
        with pytest.raises(NotFound):
            self.store.get_search(s.id)
        with pytest.raises(NotFound):
            self.store.delete_search(s.id)

    @precondition(lambda self: self.searches)
    @rule(data=st.data())
    def export_delete_import(self, data: st.DataObject) -> None:
        """Move a search, trials mid-flight, through an export bundle: running trials come back queued."""
        s = self.searches[data.draw(st.sampled_from(list(self.searches)))]
        bundle = self.store.export_search(s.id)
        self.store.delete_search(s.id)
        imported = self.store.import_search(bundle)
        assert imported.id == s.id
        self.feeds.pop(s.id, None)  # a new search under the same id: its readers start over
        s.last_claim_at = 0.0
        for t in self._open(s):
            if t.state == TrialState.RUNNING:
                t.state, t.token, t.expires = TrialState.QUEUED, None, None

    # ------------------------------------------------------------------ rules: claims and leases
    @rule(target=tokens, lease=st.sampled_from([1.0, 2.0, 5.0]), data=st.data())
    def claim(self, lease: float, data: st.DataObject) -> Any:
        only = data.draw(st.sampled_from([None, *list(self.searches)]), label="only")
        self._sweep()
        eligible = [
            t
            for t in self.trials.values()
            if t.state == TrialState.QUEUED
            and self._runnable(self.searches[t.search_id])
            and (only is None or t.search_id == only)
        ]
        got = self.store.claim("w", lease, search_id=only)
        now = self.clock()
        if eligible:
            assert got is not None, "a queued trial was there to claim"
            key = min((t.updated_at, t.number) for t in eligible)  # oldest first, ties by number
            allowed = {t.id for t in eligible if (t.updated_at, t.number) == key}  # (one per search)
            assert got.id in allowed, "the oldest queued trial is claimed first"
            t = self.trials[got.id]
            t.attempts += 1
        else:
            slots = [
                s
                for s in self.searches.values()
                if self._runnable(s) and len(s.trials) < s.max_trials and (only is None or s.id == only)
            ]
            if not slots:
                assert got is None, f"no work, yet claim returned {got}"
                return multiple()
            assert got is not None, "a slot was free"

            def fair(s: MSearch) -> tuple[int, float, float]:
                running = sum(1 for t in s.trials if self.trials[t].state == TrialState.RUNNING)
                return running, s.last_claim_at, s.created_at

            best = min(fair(s) for s in slots)
            assert got.search_id in {s.id for s in slots if fair(s) == best}, "claims are fair"
            s = self.searches[got.search_id]
            assert got.number == len(s.trials), "slots are taken in order"
            t = MTrial(got.id, s.id, got.number, TrialState.RUNNING, None, None, 1, now)
            self.trials[t.id] = t
            s.trials.append(t.id)
            s.status = SearchStatus.RUNNING
        s = self.searches[got.search_id]
        s.last_claim_at = now
        assert got.state == TrialState.RUNNING and got.config is not None and got.lease_token
        t.state, t.token, t.expires, t.updated_at = TrialState.RUNNING, got.lease_token, now + lease, now
        assert got.lease_expires_at == pytest.approx(t.expires)
        return (got.id, got.lease_token)

    @rule(target=tokens, lease=st.sampled_from([2.0, 5.0]), data=st.data())
    def claim_again(self, lease: float, data: st.DataObject) -> Any:
        """The same rule twice: claims are drawn as often as reports."""
        return self.claim(lease, data)

    @rule(target=tokens, lease=st.sampled_from([1.0, 3.0]))
    def claim_and_crash(self, lease: float) -> Any:
        """A claimer that took a slot and died before saving its suggestion: a config-less trial."""
        self._sweep()
        self.store.requeue_expired()
        slots = [s for s in self.searches.values() if self._runnable(s) and len(s.trials) < s.max_trials]
        if not slots or any(t.state == TrialState.QUEUED for t in self.trials.values()):
            return multiple()
        now = self.clock()
        got = self.store._claim_new_slot("crashed", lease, now, None)
        assert got is not None and got.config is None and got.lease_token
        if self.backend == "mongo":  # the claimer's memory dies with it; the sweep stamps its marker
            store: Any = self.store
            store._held.pop(got.id)
            store.repair(grace=-1)
        s = self.searches[got.search_id]
        t = MTrial(got.id, s.id, got.number, TrialState.RUNNING, got.lease_token, now + lease, 1, now)
        self.trials[t.id] = t
        s.trials.append(t.id)
        s.status, s.last_claim_at = SearchStatus.RUNNING, now
        return (got.id, got.lease_token)

    @rule(held=tokens, lease=st.sampled_from([1.0, 5.0]))
    def heartbeat(self, held: tuple[str, str], lease: float) -> None:
        tid, token = held
        if tid in self.deleted:
            with pytest.raises(NotFound):
                self.store.heartbeat(tid, token, lease)
            return
        t = self.trials[tid]
        reply = self.store.heartbeat(tid, token, lease, [{"epoch": 1, "score": 0.5}])
        if t.state == TrialState.RUNNING and t.token == token:
            assert not reply.should_stop
            t.expires, t.updated_at = self.clock() + lease, self.clock()
        elif t.state == TrialState.CANCELLED:
            assert reply.should_stop and reply.reason == "cancelled"
        else:
            assert reply.should_stop and reply.reason == "lease_lost"

    @rule(
        held=tokens,
        kind=st.sampled_from(["done", "failed", "pruned", "pruned-no-history", "no-metric", "search-error"]),
        value=st.sampled_from([0.1, 0.5, 0.9]),
    )
    def report(self, held: tuple[str, str], kind: str, value: float) -> None:
        tid, token = held
        result = {
            "done": TrialResult.done({"score": value}),
            "failed": TrialResult.failed("boom"),
            "search-error": TrialResult.failed("cannot build", search_error=True),
            "pruned": TrialResult(state=TrialState.PRUNED, history=[{"epoch": 2, "score": value}]),
            "pruned-no-history": TrialResult(state=TrialState.PRUNED),
            "no-metric": TrialResult.done({"other": value}),
        }[kind]
        if tid in self.deleted:
            with pytest.raises(NotFound):
                self.store.report(tid, token, result)
            return
        t = self.trials[tid]
        if t.state.is_final and t.reported_by == hash_token(token):
            got = self.store.report(tid, token, result)
            assert got.state == t.state and got.value == t.value, "a repeated report changes nothing"
            return
        if t.state != TrialState.RUNNING or t.token != token:
            with pytest.raises(LeaseLost):
                self.store.report(tid, token, result)
            return
        state = {
            "done": TrialState.DONE,
            "failed": TrialState.FAILED,
            "pruned": TrialState.PRUNED,
            "pruned-no-history": TrialState.PRUNED,
            "no-metric": TrialState.FAILED,
            "search-error": TrialState.FAILED,
        }[kind]
        expected = value if kind in ("done", "pruned") else None
        got = self.store.report(tid, token, result)
        assert got.state == state and got.value == expected
        self._finish(t, state, expected, hash_token(token), fails_search=kind == "search-error")

    @rule(held=tokens, value=st.sampled_from([0.2, 0.7]))
    def report_done(self, held: tuple[str, str], value: float) -> None:
        """Done reports drawn more often (best trial, completion, failure streaks reset)."""
        self.report(held, "done", value)

    @precondition(lambda self: self.backend == "mongo")
    @rule(held=tokens, crash_in=st.sampled_from(["_apply_op", "_settle"]))
    def report_then_crash(self, held: tuple[str, str], crash_in: str) -> None:
        """MongoDB: the reporting process dies after the trial moved but before its search caught up
        (``_apply_op``) or before the follow-ups (``_settle``); the repair sweep finishes the change."""
        tid, token = held
        t = self.trials.get(tid)
        if t is None or t.state != TrialState.RUNNING or t.token != token:
            return
        store: Any = self.store

        def crash(*_: Any, **__: Any) -> None:
            raise _Crash

        setattr(store, crash_in, crash)
        try:
            with pytest.raises(_Crash):
                store.report(tid, token, TrialResult.failed("crashed"))
        finally:
            delattr(store, crash_in)
        self._finish(t, TrialState.FAILED, None, hash_token(token))
        store.repair(grace=-1)  # every op, even one stamped at this very (fake) instant

    @rule(held=tokens)
    def release(self, held: tuple[str, str]) -> None:
        tid, token = held
        if tid in self.deleted:
            with pytest.raises(NotFound):
                self.store.release(tid, token)
            return
        t = self.trials[tid]
        if t.state != TrialState.RUNNING or t.token != token:
            with pytest.raises(LeaseLost):
                self.store.release(tid, token)
            return
        got = self.store.release(tid, token)
        t.attempts = max(0, t.attempts - 1)
        t.state, t.token, t.expires, t.updated_at = TrialState.QUEUED, None, None, self.clock()
        assert got.state == TrialState.QUEUED and got.attempts == t.attempts

    @rule(seconds=st.sampled_from([0.5, 1.5, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def requeue_expired(self) -> None:
        expected = self._sweep()
        got = self.store.requeue_expired()
        assert got >= expected

    # ------------------------------------------------------------------ invariants
    @invariant()
    def store_matches_model(self) -> None:
        for s in self.searches.values():
            got = self.store.get_search(s.id)
            trials = self.store.list_trials(s.id)
            c = got.counts
            assert [t.number for t in trials] == list(range(len(trials))), "numbers are 0..n-1, unique"
            assert c.total == len(trials) <= got.max_trials == s.max_trials
            for state in TrialState:
                assert getattr(c, state.value) == sum(1 for t in trials if t.state == state), state
            assert got.status == s.status, (got.status, s.status, c)
            if got.status == SearchStatus.COMPLETED:
                assert c.finished == got.max_trials, "completed means every slot finished"
                assert c.done >= 1, "completed means at least one trial succeeded"
            if got.status in (SearchStatus.PENDING, SearchStatus.RUNNING):
                assert c.finished < got.max_trials, "a runnable search has unfinished slots"
            if got.status.is_final:
                assert c.queued == c.running == 0, "a final search has no open trials"
            assert got.consecutive_failures == s.consecutive
            assert got.best_trial_id == s.best_id and got.best_value == s.best_value
            done = [t for t in trials if t.state == TrialState.DONE]
            if done:
                pick = min if s.mode == "min" else max
                best = pick(t.value for t in done if t.value is not None)
                assert got.best_value == best and math.isfinite(best)
            else:
                assert got.best_trial_id is None
            for t in trials:
                m = self.trials[t.id]
                assert (t.id, t.number, t.state) == (m.id, m.number, m.state)
                assert t.lease_token == m.token and t.attempts == m.attempts
                assert (t.state == TrialState.RUNNING) == (t.lease_token is not None)
                if m.expires is not None:
                    assert t.lease_expires_at == pytest.approx(m.expires)
            assert_backend_consistent(self.store, s.id)
            cursor, read = self.feeds.get(s.id, (None, {}))
            batch, cursor = self.store.trials_changed_since(s.id, cursor)
            read.update((t.id, t) for t in batch)
            self.feeds[s.id] = (cursor, read)
            assert read == {t.id: t for t in trials}, "the change feed's reader holds every trial as it is"


@pytest.mark.parametrize("backend", ["sqlite", "mongo"])
def test_store_state_machine(backend: str) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(backend),
        settings=settings(
            max_examples=200,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
