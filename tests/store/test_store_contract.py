"""The store contract (hyperhive/store/base.py), run against every backend."""

from __future__ import annotations

from typing import Any

import pytest
from storekit import FakeClock, make_store, search_doc

from hyperhive.errors import Conflict, LeaseLost, NotFound
from hyperhive.models import (
    DatasetInfo,
    SearchStatus,
    TrialResult,
    TrialState,
    WorkerInfo,
)
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store
from hyperhive.store.base import hash_token


def create(store: Store, owner: str | None = "alice", **overrides: Any):
    return store.create_search(validate(search_doc(**overrides)), owner=owner)


def done(value: float, **extra: Any) -> TrialResult:
    return TrialResult.done({"loss": value, **extra})


# ---------------------------------------------------------------- searches


def test_create_get_list_count(store: Store) -> None:
    a = create(store, name="alpha")
    b = create(store, owner="bob", name="beta", seed=None)
    assert a.status == SearchStatus.PENDING and a.seed == 11
    assert isinstance(b.seed, int) and 0 <= b.seed < 2**31, "a missing seed is drawn and recorded"
    got = store.get_search(a.id)
    assert got.name == "alpha" and got.owner == "alice" and got.max_trials == 4
    assert got.document["params"]["x"] == {"uniform": [0, 1]}
    assert got.objective_metric == "loss" and got.objective_mode == "min"
    assert {s.id for s in store.list_searches()} == {a.id, b.id}
    assert [s.id for s in store.list_searches(owner="bob")] == [b.id]
    assert [s.id for s in store.list_searches(name="alpha")] == [a.id]
    assert store.count_searches(status="pending") == 2
    assert store.count_searches(owner="carol") == 0
    assert len(store.list_searches(limit=1)) == 1
    assert len(store.list_searches(limit=1, offset=1)) == 1
    with pytest.raises(NotFound):
        store.get_search("nope")


def test_delete_search_removes_trials(store: Store) -> None:
    s = create(store)
    t = store.claim("w1")
    assert t is not None
    store.delete_search(s.id)
    with pytest.raises(NotFound):
        store.get_search(s.id)
    with pytest.raises(NotFound):
        store.get_trial(t.id)
    with pytest.raises(NotFound):
        store.delete_search(s.id)


# ---------------------------------------------------------------- claims and reports


def test_claim_takes_each_slot_once_then_nothing(store: Store, clock: FakeClock) -> None:
    s = create(store, max_trials=3)
    trials = [store.claim("w1", 30) for _ in range(3)]
    assert all(t is not None for t in trials)
    assert sorted(t.number for t in trials) == [0, 1, 2]  # type: ignore[union-attr]
    for t in trials:
        assert t is not None
        assert t.state == TrialState.RUNNING and t.worker_id == "w1" and t.attempts == 1
        assert t.lease_token and t.lease_expires_at == pytest.approx(clock.now + 30)
        assert t.config is not None and 0 <= t.config["params"]["x"] <= 1
        assert t.config["params"]["kind"] in ("a", "b")
        assert t.vals is not None and set(t.vals) == {"params.x", "params.kind"}
    assert len({t.seed for t in trials if t}) == 3, "every slot has its own seed"
    assert store.claim("w1") is None
    search = store.get_search(s.id)
    assert search.status == SearchStatus.RUNNING and search.counts.running == 3 and search.slots_left == 0


def test_report_done_updates_value_best_counts_and_completion(store: Store) -> None:
    s = create(store, max_trials=2)
    t1, t2 = store.claim("w"), store.claim("w")
    assert t1 and t2 and t1.lease_token and t2.lease_token
    r1 = store.report(t1.id, t1.lease_token, done(0.5, extra=1))
    assert r1.state == TrialState.DONE and r1.value == 0.5 and r1.loss == 0.5
    assert r1.metrics == {"loss": 0.5, "extra": 1} and r1.lease_token is None
    mid = store.get_search(s.id)
    assert mid.status == SearchStatus.RUNNING and mid.best_trial_id == t1.id and mid.best_value == 0.5
    store.report(t2.id, t2.lease_token, done(0.25))
    end = store.get_search(s.id)
    assert end.status == SearchStatus.COMPLETED and end.finished_at is not None
    assert end.counts.done == 2 and end.counts.running == 0 and end.counts.finished == 2
    assert end.best_trial_id == t2.id and end.best_value == 0.25
    best = store.best_trial(s.id)
    assert best is not None and best.id == t2.id


def test_maximised_objective_keeps_metric_units_and_negates_loss(store: Store) -> None:
    objective = {"function": "hyperhive.demo_objectives:quadratic", "metric": "acc", "mode": "max"}
    s = create(store, objective=objective, max_trials=2)
    t1, t2 = store.claim("w"), store.claim("w")
    assert t1 and t2 and t1.lease_token and t2.lease_token
    store.report(t1.id, t1.lease_token, TrialResult.done({"acc": 0.9}))
    r2 = store.report(t2.id, t2.lease_token, TrialResult.done({"acc": 0.7}))
    assert r2.value == 0.7 and r2.loss == -0.7
    assert store.get_search(s.id).best_value == 0.9
    assert store.best_trial(s.id).id == t1.id  # type: ignore[union-attr]


def test_report_is_idempotent_and_stale_tokens_are_rejected(store: Store) -> None:
    s = create(store, max_trials=2)
    t = store.claim("w")
    assert t and t.lease_token
    first = store.report(t.id, t.lease_token, done(0.3))
    again = store.report(t.id, t.lease_token, done(0.1))
    assert again.value == 0.3 and again.version == first.version, "a repeated report changes nothing"
    assert store.get_search(s.id).counts.done == 1, "counted once"
    with pytest.raises(LeaseLost):
        store.report(t.id, "not-the-token", done(0.1))
    t2 = store.claim("w")
    assert t2 is not None
    with pytest.raises(LeaseLost):
        store.report(t2.id, "forged", done(0.2))
    with pytest.raises(NotFound):
        store.report("missing", "x", done(0.2))


def test_done_without_objective_metric_becomes_failed(store: Store) -> None:
    create(store, max_trials=2)
    t = store.claim("w")
    assert t and t.lease_token
    r = store.report(t.id, t.lease_token, TrialResult.done({"accuracy": 0.9}))
    assert r.state == TrialState.FAILED and r.value is None
    assert r.error and "'loss'" in r.error
    t = store.claim("w")
    assert t and t.lease_token
    r = store.report(t.id, t.lease_token, TrialResult.done({"loss": float("nan")}))
    assert r.state == TrialState.FAILED


def test_report_rejects_non_final_state(store: Store) -> None:
    create(store)
    t = store.claim("w")
    assert t and t.lease_token
    with pytest.raises(ValueError):
        store.report(t.id, t.lease_token, TrialResult(state=TrialState.RUNNING))


# ---------------------------------------------------------------- leases


def test_heartbeat_extends_lease_and_saves_history(store: Store, clock: FakeClock) -> None:
    create(store)
    t = store.claim("w", 10)
    assert t and t.lease_token
    clock.advance(8)
    reply = store.heartbeat(t.id, t.lease_token, 10, [{"epoch": 1, "loss": 0.9}])
    assert not reply.should_stop and reply.lease_expires_at == pytest.approx(clock.now + 10)
    clock.advance(8)  # past the first expiry, within the renewed one
    assert store.requeue_expired() == 0
    got = store.get_trial(t.id)
    assert got.state == TrialState.RUNNING and got.history == [{"epoch": 1, "loss": 0.9}]
    assert store.heartbeat(t.id, "wrong", 10).reason == "lease_lost"


def ep(i: int) -> dict[str, Any]:
    return {"epoch": i + 1, "loss": 1.0 / (i + 1)}


def test_heartbeat_appends_new_epochs_idempotently(store: Store, clock: FakeClock) -> None:
    create(store)
    t = store.claim("w", 30)
    assert t and t.lease_token
    store.heartbeat(t.id, t.lease_token, 30, new_epochs=[ep(0)], from_epoch=0)
    store.heartbeat(t.id, t.lease_token, 30, new_epochs=[ep(1), ep(2)], from_epoch=1)
    store.heartbeat(t.id, t.lease_token, 30, new_epochs=[ep(1), ep(2)], from_epoch=1)  # answer was lost
    store.heartbeat(t.id, t.lease_token, 30)  # a plain heartbeat keeps the history
    assert store.get_trial(t.id).history == [ep(0), ep(1), ep(2)], "a resent batch is not duplicated"
    [listed] = store.list_trials(t.search_id)
    assert listed.history == [ep(0), ep(1), ep(2)]
    [got] = store.get_trials([t.id])
    assert got.history == [ep(0), ep(1), ep(2)]
    with pytest.raises(ValueError, match="from_epoch: 5 is past the 3 epoch"):
        store.heartbeat(t.id, t.lease_token, 30, new_epochs=[ep(5)], from_epoch=5)
    with pytest.raises(ValueError, match="from_epoch"):
        store.heartbeat(t.id, t.lease_token, 30, new_epochs=[ep(0)])
    with pytest.raises(ValueError, match="not both"):
        store.heartbeat(t.id, t.lease_token, 30, [ep(0)], new_epochs=[ep(0)], from_epoch=0)
    assert store.get_trial(t.id).history == [ep(0), ep(1), ep(2)], "a refused append saves nothing"
    assert store.heartbeat(t.id, "stale", 30, new_epochs=[ep(3)], from_epoch=3).reason == "lease_lost"
    assert store.get_trial(t.id).history == [ep(0), ep(1), ep(2)]
    store.report(t.id, t.lease_token, done(0.3))  # a report without a history keeps the appended one
    assert store.get_trial(t.id).history == [ep(0), ep(1), ep(2)]
    exported = store.export_search(t.search_id)["trials"][0]["history"]
    assert exported == [ep(0), ep(1), ep(2)]


def test_appended_history_restarts_with_a_new_attempt_and_a_whole_history_replaces_it(
    store: Store, clock: FakeClock
) -> None:
    create(store)
    t = store.claim("w", 10)
    assert t and t.lease_token
    store.heartbeat(t.id, t.lease_token, 10, [ep(0), ep(1)])  # saved whole (an older worker)
    store.heartbeat(t.id, t.lease_token, 10, new_epochs=[ep(2)], from_epoch=2)
    assert store.get_trial(t.id).history == [ep(0), ep(1), ep(2)]
    store.heartbeat(t.id, t.lease_token, 10, new_epochs=[ep(7), ep(8)], from_epoch=1)
    assert store.get_trial(t.id).history == [ep(0), ep(7), ep(8)], "history[:k] + new"
    clock.advance(11)
    assert store.requeue_expired() == 1
    again = store.claim("w2", 10)
    assert again and again.id == t.id and again.lease_token
    store.heartbeat(again.id, again.lease_token, 10, new_epochs=[ep(4)], from_epoch=0)
    assert store.get_trial(t.id).history == [ep(4)], "the new attempt starts the history afresh"
    store.report(again.id, again.lease_token, TrialResult.done({"loss": 0.1}, history=[ep(0), ep(1)]))
    assert store.get_trial(t.id).history == [ep(0), ep(1)], "a reported history replaces the appended one"


def test_expired_lease_is_requeued_with_its_config_and_finished_by_another(
    store: Store, clock: FakeClock
) -> None:
    s = create(store, max_trials=1, max_retries=2)
    t = store.claim("dead-worker", 5)
    assert t and t.lease_token
    clock.advance(6)
    assert store.requeue_expired() == 1
    assert store.requeue_expired() == 0, "a trial is requeued once"
    q = store.get_trial(t.id)
    assert q.state == TrialState.QUEUED and q.lease_token is None and q.config == t.config
    assert store.get_search(s.id).counts.queued == 1
    t2 = store.claim("live-worker", 5)
    assert t2 is not None and t2.id == t.id and t2.number == t.number and t2.config == t.config
    assert t2.attempts == 2 and t2.worker_id == "live-worker" and t2.lease_token != t.lease_token
    hb = store.heartbeat(t.id, t.lease_token, 5)
    assert hb.should_stop and hb.reason == "lease_lost"
    with pytest.raises(LeaseLost):
        store.report(t.id, t.lease_token, done(0.1))
    assert t2.lease_token
    store.report(t.id, t2.lease_token, done(0.2))
    final = store.get_search(s.id)
    assert final.status == SearchStatus.COMPLETED and final.counts.done == 1 and final.counts.total == 1


def test_out_of_retries_the_trial_fails_as_worker_lost(store: Store, clock: FakeClock) -> None:
    s = create(store, max_trials=1, max_retries=1)
    for _ in range(2):
        t = store.claim("w", 5)
        assert t is not None
        clock.advance(6)
        store.requeue_expired()
    got = store.get_trial(t.id)
    assert got.state == TrialState.FAILED and got.error and "worker lost" in got.error
    search = store.get_search(s.id)
    assert search.counts.failed == 1 and search.status == SearchStatus.FAILED, "no trial succeeded"
    assert search.error and "no trial succeeded" in search.error and "worker lost" in search.error
    assert store.claim("w") is None


def test_claim_sweeps_expired_leases_first(store: Store, clock: FakeClock) -> None:
    create(store, max_trials=1)
    t = store.claim("w", 5)
    assert t is not None
    clock.advance(10)
    again = store.claim("w2", 5)
    assert again is not None and again.id == t.id


def test_release_hands_back_without_spending_a_retry(store: Store) -> None:
    s = create(store, max_trials=1, max_retries=0)
    t = store.claim("w")
    assert t and t.lease_token
    r = store.release(t.id, t.lease_token)
    assert r.state == TrialState.QUEUED and r.attempts == 0
    assert store.get_search(s.id).counts.queued == 1
    with pytest.raises(LeaseLost):
        store.release(t.id, t.lease_token)
    t2 = store.claim("w")
    assert t2 is not None and t2.id == t.id and t2.attempts == 1 and t2.config == t.config


def test_suggestion_missing_after_a_crash_is_made_by_the_next_claimer(store: Store, clock: FakeClock) -> None:
    """A claimer that died between taking the slot and saving its suggestion leaves a config-less
    trial; after the lease expires the next claimer suggests for it."""
    s = create(store, max_trials=1)
    now = clock()
    raw = store._claim_new_slot("crashed", 5, now, None)
    assert raw is not None and raw.config is None
    clock.advance(6)
    t = store.claim("w", 5)
    assert t is not None and t.id == raw.id and t.config is not None and t.vals
    assert store.get_search(s.id).counts.total == 1


# ---------------------------------------------------------------- cancel, extend, failures


def test_cancel_stops_running_and_queued_trials(store: Store, clock: FakeClock) -> None:
    s = create(store, max_trials=3)
    running = store.claim("w", 5)
    queued = store.claim("w", 5)
    assert running and queued and running.lease_token and queued.lease_token
    store.release(queued.id, queued.lease_token)
    c = store.cancel_search(s.id)
    assert c.status == SearchStatus.CANCELLED and c.counts.cancelled == 2 and c.counts.running == 0
    assert store.get_trial(queued.id).state == TrialState.CANCELLED
    hb = store.heartbeat(running.id, running.lease_token, 5)
    assert hb.should_stop and hb.reason == "cancelled"
    with pytest.raises(LeaseLost):
        store.report(running.id, running.lease_token, done(0.1))
    assert store.claim("w") is None
    assert store.cancel_search(s.id).status == SearchStatus.CANCELLED, "cancelling twice is a no-op"
    with pytest.raises(Conflict):
        store.extend_search(s.id, 2)


def test_extend_reopens_a_completed_search(store: Store) -> None:
    s = create(store, max_trials=1)
    t = store.claim("w")
    assert t and t.lease_token
    store.report(t.id, t.lease_token, done(0.4))
    assert store.get_search(s.id).status == SearchStatus.COMPLETED
    e = store.extend_search(s.id, 2)
    assert e.status == SearchStatus.RUNNING and e.max_trials == 3 and e.finished_at is None
    more = [store.claim("w"), store.claim("w")]
    assert sorted(m.number for m in more if m) == [1, 2]
    assert store.claim("w") is None
    with pytest.raises(ValueError):
        store.extend_search(s.id, 0)


def test_consecutive_failures_fail_the_search_and_keep_the_error(store: Store) -> None:
    s = create(store, max_trials=10, max_consecutive_failures=3)
    ok = store.claim("w")
    assert ok and ok.lease_token
    store.report(ok.id, ok.lease_token, TrialResult.failed("boom 0"))
    store.report((t := store.claim("w")).id, t.lease_token, done(0.5))  # type: ignore[union-attr,arg-type]
    bystander = store.claim("w")
    assert bystander is not None
    for i in range(3):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.failed(f"boom {i + 1}"))
    f = store.get_search(s.id)
    assert f.status == SearchStatus.FAILED and f.error and "3 consecutive" in f.error and "boom 3" in f.error
    assert store.get_trial(bystander.id).state == TrialState.CANCELLED
    assert store.claim("w") is None
    reopened = store.extend_search(s.id, 1)
    assert reopened.status == SearchStatus.RUNNING and reopened.consecutive_failures == 0


def test_a_search_error_fails_the_search_at_once(store: Store) -> None:
    """A trial that failed because of the document itself (its model cannot be built, its dataset
    loaded) fails the search on the first report, whatever ``max_consecutive_failures`` says: the open
    trials are cancelled and the rest of the budget is not spent."""
    s = create(store, max_trials=10, max_consecutive_failures=5)
    t, bystander = store.claim("w"), store.claim("w")
    assert t and t.lease_token and bystander
    got = store.report(
        t.id, t.lease_token, TrialResult.failed("ModelBuildError: kernel too large", search_error=True)
    )
    assert got.state == TrialState.FAILED and got.info["error_kind"] == "search"
    f = store.get_search(s.id)
    assert f.status == SearchStatus.FAILED and f.finished_at is not None
    assert f.error and "kernel too large" in f.error and "search document" in f.error
    assert f.counts.total == 2 and f.counts.failed == 1 and f.counts.cancelled == 1
    assert store.get_trial(bystander.id).state == TrialState.CANCELLED
    assert store.claim("w") is None, "nothing more of the budget is claimed"
    reopened = store.extend_search(s.id, 1)
    assert reopened.status == SearchStatus.RUNNING and reopened.error is None


def test_a_search_error_flag_on_a_done_report_changes_nothing(store: Store) -> None:
    s = create(store, max_trials=3, max_consecutive_failures=5)
    t = store.claim("w")
    assert t and t.lease_token
    got = store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.3}, search_error=True))
    assert got.state == TrialState.DONE and "error_kind" not in got.info
    assert store.get_search(s.id).status == SearchStatus.RUNNING


def test_ordinary_failures_keep_the_consecutive_rule(store: Store) -> None:
    s = create(store, max_trials=10, max_consecutive_failures=3)
    for i in range(2):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.failed(f"ResourceExhaustedError: OOM {i}"))
    assert store.get_search(s.id).status == SearchStatus.RUNNING


def test_a_budget_spent_without_a_done_trial_fails_the_search(store: Store) -> None:
    """Every slot finished but none succeeded: ``failed`` with the last error, not ``completed``; a
    later done trial (after ``extend``) completes it."""
    s = create(store, max_trials=2, max_consecutive_failures=5)
    for i in range(2):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.failed(f"boom {i}"))
    f = store.get_search(s.id)
    assert f.status == SearchStatus.FAILED and f.finished_at is not None
    assert f.error == "no trial succeeded (2 failed); last error: boom 1"
    assert store.claim("w") is None
    store.extend_search(s.id, 1)
    t = store.claim("w")
    assert t and t.lease_token
    store.report(t.id, t.lease_token, done(0.2))
    end = store.get_search(s.id)
    assert end.status == SearchStatus.COMPLETED and end.error is None


def test_a_budget_ending_on_a_cancelled_trial_names_the_last_failure(store: Store) -> None:
    """The slot that spends the budget need not be a failed one: the error still names the last failure
    (MongoDB reads it back from the trials)."""
    s = create(store, max_trials=2, max_consecutive_failures=5)
    a, b = store.claim("w"), store.claim("w")
    assert a and b and a.lease_token and b.lease_token
    store.report(a.id, a.lease_token, TrialResult.failed("first boom"))
    store.report(b.id, b.lease_token, TrialResult(state=TrialState.PRUNED))
    f = store.get_search(s.id)
    assert f.status == SearchStatus.FAILED
    assert f.error == "no trial succeeded (1 failed, 1 pruned); last error: first boom"


def test_claims_are_fair_across_searches(store: Store) -> None:
    a = create(store, name="a", max_trials=10)
    b = create(store, name="b", max_trials=10)
    got = [store.claim("w") for _ in range(6)]
    per = {a.id: 0, b.id: 0}
    for t in got:
        assert t is not None
        per[t.search_id] += 1
    assert per == {a.id: 3, b.id: 3}


def test_claim_restricted_to_one_search(store: Store) -> None:
    create(store, name="a")
    b = create(store, name="b")
    for _ in range(3):
        t = store.claim("w", search_id=b.id)
        assert t is not None and t.search_id == b.id


# ---------------------------------------------------------------- reading trials


def test_list_sort_filter_paginate_and_versions(store: Store) -> None:
    s = create(store, max_trials=5)
    values = [0.5, 0.1, 0.9, 0.3]
    ids = []
    for v in values:
        t = store.claim("w")
        assert t and t.lease_token
        ids.append(t.id)
        store.report(t.id, t.lease_token, done(v))
    running = store.claim("w")
    assert running is not None
    assert [t.number for t in store.list_trials(s.id)] == [0, 1, 2, 3, 4]
    assert [t.value for t in store.list_trials(s.id, sort="value")][:4] == [0.1, 0.3, 0.5, 0.9]
    by_value_desc = store.list_trials(s.id, sort="value", descending=True)
    assert [t.value for t in by_value_desc][:4] == [0.9, 0.5, 0.3, 0.1] and by_value_desc[-1].value is None
    assert [t.number for t in store.list_trials(s.id, limit=2, offset=1)] == [1, 2]
    assert [t.id for t in store.list_trials(s.id, state="running")] == [running.id]
    assert store.count_trials(s.id) == 5 and store.count_trials(s.id, state=TrialState.DONE) == 4
    assert {t.id for t in store.get_trials([ids[0], ids[2], "missing"])} == {ids[0], ids[2]}
    before = store.trial_versions(s.id)
    assert set(before) == {*ids, running.id} and before[running.id][1] == TrialState.RUNNING
    assert running.lease_token
    store.heartbeat(running.id, running.lease_token, 30, [{"epoch": 1}])
    after = store.trial_versions(s.id)
    assert after[running.id][0] > before[running.id][0] and after[ids[0]] == before[ids[0]]
    with pytest.raises(ValueError):
        store.list_trials(s.id, sort="lease_token")


def test_change_feed_returns_each_change_once(store: Store) -> None:
    s = create(store, max_trials=5)
    a, b = store.claim("w"), store.claim("w")
    assert a and b and a.lease_token
    everything, cursor = store.trials_changed_since(s.id, None)
    assert {t.id for t in everything} == {a.id, b.id}
    nothing, cursor = store.trials_changed_since(s.id, cursor)
    assert nothing == []
    store.report(a.id, a.lease_token, done(0.2))
    c = store.claim("w")
    assert c is not None
    changed, cursor = store.trials_changed_since(s.id, cursor)
    assert {t.id: t.state for t in changed} == {a.id: TrialState.DONE, c.id: TrialState.RUNNING}
    store.cancel_search(s.id)
    changed, cursor = store.trials_changed_since(s.id, cursor)
    assert {t.id for t in changed} == {b.id, c.id} and all(t.state == TrialState.CANCELLED for t in changed)
    assert store.trials_changed_since(s.id, cursor)[0] == []


def test_trial_rows_are_the_trials_light_fields_and_follow_changes(store: Store) -> None:
    """The compact read the dashboard uses: each row matches the full trial (epochs counted whether
    the history was appended epoch by epoch or saved whole), and a cursor returns only what changed."""
    s = create(store, max_trials=5)
    other = create(store, max_trials=2)
    a, b = store.claim("w", search_id=s.id), store.claim("w", search_id=s.id)
    assert a and b and a.lease_token and b.lease_token
    store.heartbeat(b.id, b.lease_token, 30, new_epochs=[ep(0), ep(1), ep(2)], from_epoch=0)
    hist = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.2}]
    store.report(a.id, a.lease_token, TrialResult.done({"loss": 0.2}, history=hist))
    rows, cursor = store.trial_rows(s.id)
    assert {r.id for r in rows} == {a.id, b.id}, "only this search's trials"
    for r in rows:
        t = store.get_trial(r.id)
        assert (r.number, r.state, r.value, r.vals, r.epochs) == (
            t.number,
            t.state,
            t.value,
            t.vals,
            len(t.history),
        )
        assert (r.started_at, r.finished_at, r.worker_id, r.version) == (
            t.started_at,
            t.finished_at,
            t.worker_id,
            t.version,
        )
    by_id = {r.id: r for r in rows}
    assert (by_id[a.id].state, by_id[a.id].value, by_id[a.id].epochs) == (TrialState.DONE, 0.2, 2)
    assert (by_id[b.id].state, by_id[b.id].value, by_id[b.id].epochs) == (TrialState.RUNNING, None, 3)
    assert by_id[b.id].vals is not None and by_id[b.id].vals == b.vals
    assert store.trial_rows(s.id, cursor)[0] == []
    assert sorted(Store.trial_rows(store, s.id)[0]) == sorted(rows), "the default reads the same rows"
    store.heartbeat(b.id, b.lease_token, 30, new_epochs=[ep(3)], from_epoch=3)
    c = store.claim("w", search_id=s.id)
    assert c is not None
    changed, cursor = store.trial_rows(s.id, cursor)
    assert {r.id: r.epochs for r in changed} == {b.id: 4, c.id: 0}
    store.cancel_search(s.id)
    changed, cursor = store.trial_rows(s.id, cursor)
    assert {r.id: r.state for r in changed} == {b.id: TrialState.CANCELLED, c.id: TrialState.CANCELLED}
    assert store.trial_rows(s.id, cursor)[0] == [] and store.trial_rows(other.id)[0] == []


# ---------------------------------------------------------------- pruning


def test_median_pruning_stops_a_trial_worse_than_finished_ones(store: Store) -> None:
    training = {"epochs": 3, "pruning": {"type": "median", "warmup_epochs": 1, "min_trials": 3}}
    model = {"layers": [{"type": "Dense", "units": {"choice": [8, 16]}}]}
    objective = {"metric": "val_accuracy", "mode": "max"}
    create(
        store,
        max_trials=6,
        training=training,
        objective=objective,
        model=model,
        params=None,
        dataset={"name": "digits"},
    )
    for acc in (0.6, 0.7, 0.8):
        t = store.claim("w")
        assert t and t.lease_token
        hist = [{"epoch": 1, "val_accuracy": acc / 2}, {"epoch": 2, "val_accuracy": acc}]
        store.report(t.id, t.lease_token, TrialResult.done({"val_accuracy": acc}, history=hist))
    t = store.claim("w")
    assert t and t.lease_token
    warm = store.heartbeat(t.id, t.lease_token, 30, [{"epoch": 1, "val_accuracy": 0.01}])
    assert not warm.should_stop, "no pruning during warm-up epochs"
    good = store.heartbeat(
        t.id, t.lease_token, 30, [{"epoch": 1, "val_accuracy": 0.01}, {"epoch": 2, "val_accuracy": 0.75}]
    )
    assert not good.should_stop
    bad = store.heartbeat(
        t.id, t.lease_token, 30, [{"epoch": 1, "val_accuracy": 0.01}, {"epoch": 2, "val_accuracy": 0.65}]
    )
    assert bad.should_stop and bad.reason == "pruned"
    hist = store.get_trial(t.id).history
    pruned = store.report(t.id, t.lease_token, TrialResult(state=TrialState.PRUNED, history=hist))
    assert pruned.state == TrialState.PRUNED and pruned.value == 0.65


# ---------------------------------------------------------------- workers, tokens, datasets


def test_workers_register_touch_list(store: Store, clock: FakeClock) -> None:
    w = WorkerInfo(id="w1", host="gpu-1", pid=42, started_at=clock(), last_seen=clock(), gpus=["0"])
    store.register_worker(w)
    clock.advance(5)
    store.touch_worker("w1", status="busy", current_trial_id="t1")
    [got] = store.list_workers()
    assert got.host == "gpu-1" and got.gpus == ["0"] and got.status == "busy"
    assert got.current_trial_id == "t1" and got.last_seen == clock()
    assert got.is_alive(clock(), 10) and not got.is_alive(clock() + 20, 10)


def test_tokens_are_hashed_and_revocable(store: Store) -> None:
    info, secret = store.create_token("alice", admin=False)
    _admin, admin_secret = store.create_token("root", admin=True)
    assert secret != admin_secret and len(secret) > 30
    auth = store.authenticate(secret)
    assert auth is not None and auth.id == info.id and not auth.admin
    assert store.authenticate(admin_secret).admin  # type: ignore[union-attr]
    assert store.authenticate("hh_wrong") is None
    assert store._token_by_hash(hash_token(secret)) is not None
    assert store._token_by_hash(secret) is None, "the secret itself is not stored"
    store.revoke_token(info.id)
    assert store.authenticate(secret) is None
    assert {t.name for t in store.list_tokens()} == {"alice", "root"}
    with pytest.raises(NotFound):
        store.revoke_token("missing")


def test_a_token_records_when_it_was_last_used_at_most_once_a_minute(store: Store, clock: FakeClock) -> None:
    _info, secret = store.create_token("alice")
    assert store.list_tokens()[0].last_used_at is None
    store.authenticate(secret)
    assert store.list_tokens()[0].last_used_at == clock()
    first = clock()
    clock.advance(30)
    store.authenticate(secret)
    assert store.list_tokens()[0].last_used_at == first  # throttled: no write on every request
    clock.advance(31)
    assert store.authenticate(secret) is not None
    assert store.list_tokens()[0].last_used_at == clock()
    store.authenticate("hh_wrong")
    assert [t.last_used_at for t in store.list_tokens()] == [clock()]


def test_datasets_round_trip_in_chunks(store: Store, clock: FakeClock) -> None:
    chunks = [b"a" * 1000, b"b" * 10, bytes(range(256))]
    info = DatasetInfo(
        id="d1", name="x.npz", owner="alice", size=1266, sha256="0" * 64, created_at=clock(), meta={"n": 1}
    )
    store.save_dataset(info, chunks)
    assert b"".join(store.read_dataset("d1")) == b"".join(chunks)
    assert store.get_dataset("d1").meta == {"n": 1}
    assert [d.id for d in store.list_datasets(owner="alice")] == ["d1"]
    assert store.list_datasets(owner="bob") == []
    store.delete_dataset("d1")
    with pytest.raises(NotFound):
        store.get_dataset("d1")


def test_searches_using_dataset_lists_only_non_final_searches_reading_it(store: Store) -> None:
    def keras(name: str, dataset: dict[str, Any], **kw: Any) -> Any:
        model = {"layers": [{"type": "Dense", "units": {"choice": [4, 8]}}]}
        objective = {"metric": "val_accuracy"}
        return create(store, name=name, dataset=dataset, model=model, objective=objective, params=None, **kw)

    uses = keras("uses", {"upload": "d1"})
    keras("other", {"upload": "d2"})
    keras("builtin", {"name": "digits"})
    running = keras("running", {"upload": "d1"}, max_trials=2)
    assert store.claim("w", search_id=running.id) is not None
    finished = keras("finished", {"upload": "d1"})
    store.cancel_search(finished.id)
    got = store.searches_using_dataset("d1")
    assert [s.id for s in got] == [running.id, uses.id]
    assert store.searches_using_dataset("d3") == []


# ---------------------------------------------------------------- export / import


def test_export_import_round_trip(store: Store, backend: str, tmp_path: Any) -> None:
    s = create(store, max_trials=3)
    t1 = store.claim("w")
    assert t1 and t1.lease_token
    store.report(t1.id, t1.lease_token, done(0.4, extra="x"))
    running = store.claim("w")
    assert running is not None
    bundle = store.export_search(s.id)
    other, cleanup = make_store(backend, tmp_path / "other")
    try:
        imported = other.import_search(bundle)
        assert imported.id == s.id and imported.best_trial_id == t1.id
        assert imported.counts.done == 1 and imported.counts.queued == 1 and imported.counts.running == 0
        got = other.get_trial(t1.id)
        assert got.metrics == {"loss": 0.4, "extra": "x"} and got.config == t1.config
        requeued = other.claim("w2")
        assert requeued is not None and requeued.id == running.id, "running trials arrive queued"
        with pytest.raises(Conflict):
            other.import_search(bundle)
    finally:
        cleanup()


# ---------------------------------------------------------------- regressions found by the state machine


def test_sweep_failing_the_search_leaves_cancelled_trials_alone(store: Store, clock: FakeClock) -> None:
    """Two leases expire in one sweep, the first one out of retries fails the search (K=1) and cancels
    the second: the sweep must not then fail (or requeue) the cancelled trial. SQLite did, driving
    ``counts.running`` to -1."""
    s = create(store, max_trials=3, max_retries=0, max_consecutive_failures=1)
    first = store.claim("w", 5)
    clock.advance(1)
    second = store.claim("w", 5)
    assert first and second
    clock.advance(10)
    assert store.requeue_expired() >= 1
    got = store.get_search(s.id)
    assert got.status == SearchStatus.FAILED
    assert got.counts.running == 0 and got.counts.failed == 1 and got.counts.cancelled == 1
    assert store.get_trial(first.id).state == TrialState.FAILED, "oldest expiry first"
    assert store.get_trial(second.id).state == TrialState.CANCELLED


def _hook_suggest(store: Store, action: Any) -> None:
    """Run ``action(search_id)`` inside the next suggestion, as another process would mid-claim."""
    real = store.engine.suggest

    def hooked(st: Store, search: Any, trial: Any) -> Any:
        store.engine.suggest = real  # type: ignore[method-assign]
        action(search.id)
        return real(st, search, trial)

    store.engine.suggest = hooked  # type: ignore[method-assign]


def test_cancel_landing_mid_claim_gives_none_not_lease_lost(store: Store) -> None:
    """A cancel between taking the slot and saving the suggestion: claim must not raise (the worker
    treats LeaseLost from claim as fatal); the trial is cancelled and the claim moves on."""
    s = create(store, max_trials=3)
    other = create(store, name="other", max_trials=1)
    _hook_suggest(store, store.cancel_search)
    got = store.claim("w", 30, search_id=s.id)
    assert got is None
    c = store.get_search(s.id)
    # SQLite suggests before taking the slot (the cancelled search then has no slot to give), MongoDB
    # after (the trial it took is cancelled with its search)
    took_slot_first = not isinstance(store, SQLiteStore)
    assert c.status == SearchStatus.CANCELLED and c.counts.cancelled == int(took_slot_first)
    assert c.counts.running == 0
    _hook_suggest(store, lambda _sid: store.cancel_search(s.id))  # cancels a search it is not claiming
    unrestricted = store.claim("w", 30)
    assert unrestricted is not None and unrestricted.search_id == other.id


def test_a_slot_taken_by_another_claimer_mid_suggestion_still_gets_its_config(store: Store) -> None:
    """Two claimers on one search: the other takes the slot this claim was suggesting for; this claim
    takes the next slot and its trial has a config (made for that slot), none is left without."""
    s = create(store, max_trials=3)
    taken: list[Any] = []
    _hook_suggest(store, lambda sid: taken.append(store.claim("other", 30)))
    got = store.claim("w", 30)
    [first] = taken
    assert first is not None and got is not None and {first.number, got.number} == {0, 1}
    assert first.config is not None and got.config is not None and got.vals
    assert store.get_search(s.id).counts.running == 2
    for t in (first, got):
        assert t.lease_token and store.report(t.id, t.lease_token, done(0.1)).state == TrialState.DONE


def test_a_claim_marks_the_registered_worker_busy_with_its_trial(store: Store, clock: FakeClock) -> None:
    create(store, max_trials=2)
    store.register_worker(
        WorkerInfo(id="w1", host="h", pid=1, started_at=clock(), last_seen=clock(), status="idle")
    )
    clock.advance(5)
    t = store.claim("w1", 30)
    assert t is not None
    [w] = store.list_workers()
    assert w.status == "busy" and w.current_trial_id == t.id and w.last_seen == clock()
    assert store.claim("unregistered", 30) is not None, "a claimer without a worker row claims as before"
    assert [x.id for x in store.list_workers()] == ["w1"]


def test_delete_landing_mid_claim_gives_the_next_trial_not_not_found(store: Store) -> None:
    doomed = create(store, name="doomed", max_trials=2)
    other = create(store, name="other", max_trials=2)
    store.claim("w", 30, search_id=other.id)  # fairness now prefers the doomed search
    _hook_suggest(store, store.delete_search)
    got = store.claim("w", 30)
    assert got is not None and got.search_id == other.id and got.config is not None
    with pytest.raises(NotFound):
        store.get_search(doomed.id)


def test_engine_forgets_a_deleted_search_reimported_with_the_same_id(store: Store) -> None:
    """Delete, then import an older export of the same search (same id, same created_at): the engine's
    history must be the imported trials, not phantoms of the deleted ones."""
    s = create(store, max_trials=6, algorithm={"type": "tpe", "n_startup_trials": 2})
    for v in (0.5, 0.4):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, done(v))
    old_bundle = store.export_search(s.id)
    for v in (0.3, 0.2):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, done(v))
    search = store.get_search(s.id)
    assert len(store.engine.history(store, search).trials) == 4
    store.delete_search(s.id)
    imported = store.import_search(old_bundle)
    assert len(store.engine.history(store, imported).trials) == 2, "no phantom trials of the deleted search"
    t = store.claim("w")
    assert t is not None and t.number == 2 and t.config is not None


def _finished_bundle(store: Store, **overrides: Any) -> dict[str, Any]:
    s = create(store, max_trials=2, **overrides)
    for v in (0.5, 0.4):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, done(v))
    bundle = store.export_search(s.id)
    store.delete_search(s.id)
    return bundle


def test_import_completes_a_running_search_whose_slots_all_finished(store: Store) -> None:
    """An export taken between a MongoDB report and its completion step says ``running`` with every
    slot finished; imported as is, SQLite kept it running forever (nothing would ever report again)."""
    bundle = _finished_bundle(store)
    bundle["search"].update(status="running", finished_at=None)
    got = store.import_search(bundle)
    assert got.status == SearchStatus.COMPLETED and got.finished_at is not None
    assert store.claim("w") is None


def test_import_fails_a_running_search_whose_slots_all_failed(store: Store) -> None:
    s = create(store, max_trials=2, max_consecutive_failures=5)
    for i in range(2):
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.failed(f"boom {i}"))
    bundle = store.export_search(s.id)
    store.delete_search(s.id)
    bundle["search"].update(status="running", finished_at=None, error=None)
    got = store.import_search(bundle)
    assert got.status == SearchStatus.FAILED and got.error and "no trial succeeded" in got.error


def test_import_cancels_open_trials_of_a_final_search(store: Store) -> None:
    """An export taken while a failed search was still cancelling its trials (MongoDB cancels them one
    by one): the imported search is final, so its open trials arrive cancelled."""
    s = create(store, max_trials=4, max_consecutive_failures=1)
    a, b = store.claim("w"), store.claim("w")
    assert a and b and a.lease_token and b.lease_token
    bundle = store.export_search(s.id)
    store.delete_search(s.id)
    bundle["search"].update(status="failed", error="1 consecutive trials failed; last error: x")
    got = store.import_search(bundle)
    assert got.status == SearchStatus.FAILED and got.counts.cancelled == 2
    assert got.counts.queued == got.counts.running == 0
    assert {t.state for t in store.list_trials(s.id)} == {TrialState.CANCELLED}
    assert store.claim("w") is None


def test_import_refuses_trial_ids_that_exist_with_conflict(store: Store) -> None:
    """Trial ids held by another search: Conflict on both backends (SQLite raised IntegrityError), and
    nothing of the failed import is left behind."""
    bundle = _finished_bundle(store)
    store.import_search(bundle)
    copy = {**bundle, "search": {**bundle["search"], "id": "another"}}
    copy["trials"] = [{**t, "search_id": "another"} for t in bundle["trials"]]
    with pytest.raises(Conflict):
        store.import_search(copy)
    with pytest.raises(NotFound):
        store.get_search("another")
    assert store.count_trials("another") == 0


@pytest.mark.parametrize(
    "breakage",
    ["trial of another search", "numbers with a gap", "more trials than slots", "duplicate number"],
)
def test_import_refuses_inconsistent_bundles(store: Store, breakage: str) -> None:
    bundle = _finished_bundle(store)
    trials = bundle["trials"]
    if breakage == "trial of another search":
        trials[1]["search_id"] = "elsewhere"
    elif breakage == "numbers with a gap":
        trials[1]["number"] = 5
    elif breakage == "more trials than slots":
        bundle["search"]["max_trials"] = 1
    else:
        trials[1]["number"] = 0
    with pytest.raises(ValueError):
        store.import_search(bundle)
    with pytest.raises(NotFound):
        store.get_search(bundle["search"]["id"])


def test_median_pruning_in_mode_min_uses_only_done_trials(store: Store) -> None:
    """Mode ``min``: a trial whose latest value is *above* the median of the done trials at that epoch is
    pruned. Failed and pruned trials' histories do not count towards ``min_trials`` or the median."""
    training = {"epochs": 3, "pruning": {"type": "median", "warmup_epochs": 1, "min_trials": 3}}
    model = {"layers": [{"type": "Dense", "units": {"choice": [8, 16]}}]}
    objective = {"metric": "val_loss", "mode": "min"}
    create(store, max_trials=8, training=training, objective=objective, model=model, params=None,
           dataset={"name": "digits"})  # fmt: skip

    def finish(result: TrialResult) -> None:
        t = store.claim("w")
        assert t and t.lease_token
        store.report(t.id, t.lease_token, result)

    def hist(v: float) -> list[dict[str, Any]]:
        return [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": v}]

    finish(TrialResult.done({"val_loss": 0.2}, history=hist(0.2)))
    finish(TrialResult.done({"val_loss": 0.4}, history=hist(0.4)))
    finish(TrialResult.failed("x", history=hist(0.01)))  # a failed trial's curve is no evidence
    finish(TrialResult(state=TrialState.PRUNED, history=hist(9.0)))
    t = store.claim("w")
    assert t and t.lease_token
    bad = store.heartbeat(t.id, t.lease_token, 30, hist(5.0))
    assert not bad.should_stop, "only 2 done trials: fewer than min_trials"
    finish(TrialResult.done({"val_loss": 0.6}, history=hist(0.6)))  # median of done: 0.4
    assert not store.heartbeat(t.id, t.lease_token, 30, hist(0.3)).should_stop, "below the median: keep"
    assert not store.heartbeat(t.id, t.lease_token, 30, hist(0.4)).should_stop, "at the median: keep"
    worse = store.heartbeat(t.id, t.lease_token, 30, hist(0.45))
    assert worse.should_stop and worse.reason == "pruned"
    pruned = store.report(t.id, t.lease_token, TrialResult(state=TrialState.PRUNED, history=hist(0.45)))
    assert pruned.state == TrialState.PRUNED and pruned.value == 0.45 and pruned.loss == 0.45
    assert store.get_search(pruned.search_id).best_value == 0.2, "a pruned value is never the best"


def test_only_a_failed_trial_can_fail_the_search(store: Store) -> None:
    """A running search whose failure streak already reached K (an export taken between a MongoDB
    report and its failure step): a pruned report must not fail it (SQLite did, 'last error: None');
    the next failed one does."""
    s = create(store, max_trials=4, max_consecutive_failures=2)
    a, b = store.claim("w"), store.claim("w")
    assert a and b
    bundle = store.export_search(s.id)
    store.delete_search(s.id)
    bundle["search"]["consecutive_failures"] = 2
    store.import_search(bundle)
    t = store.claim("w")
    assert t and t.lease_token
    store.report(t.id, t.lease_token, TrialResult(state=TrialState.PRUNED))
    assert store.get_search(s.id).status == SearchStatus.RUNNING
    t = store.claim("w")
    assert t and t.lease_token
    store.report(t.id, t.lease_token, TrialResult.failed("boom"))
    f = store.get_search(s.id)
    assert f.status == SearchStatus.FAILED and f.error and "boom" in f.error


# ---------------------------------------------------------------- quotas


def test_quota_overrides_are_stored_replaced_listed_and_deleted(store: Store) -> None:
    assert store.get_quota("alice") is None and store.list_quotas() == {}
    assert store.set_quota("alice", {"max_running_searches": 2, "max_trials": None}) == {
        "max_running_searches": 2,
        "max_trials": None,
    }
    assert store.get_quota("alice") == {"max_running_searches": 2, "max_trials": None}
    store.set_quota("alice", {"max_stored_bytes": 10})  # replaces the override whole
    store.set_quota("bob", {})
    assert store.list_quotas() == {"alice": {"max_stored_bytes": 10}, "bob": {}}
    for bad, field in (
        ({"max_gpus": 1}, "max_gpus"),
        ({"max_trials": -1}, "max_trials"),
        ({"max_trials": True}, "max_trials"),
    ):
        with pytest.raises(ValueError, match=field):
            store.set_quota("alice", bad)
    assert store.get_quota("alice") == {"max_stored_bytes": 10}, "a refused override changes nothing"
    store.delete_quota("alice")
    assert store.get_quota("alice") is None
    with pytest.raises(NotFound):
        store.delete_quota("alice")


def test_usage_counts_running_searches_trials_and_stored_bytes(store: Store) -> None:
    from hyperhive.quotas import TRIAL_BYTES_ESTIMATE

    assert store.usage("alice").to_dict() == {"running_searches": 0, "stored_bytes": 0, "trials": 0}
    a = create(store, max_trials=3)
    b = create(store, max_trials=2)
    create(store, owner="bob", max_trials=7)
    t = store.claim("w", search_id=a.id)
    assert t and t.lease_token
    store.report(t.id, t.lease_token, done(0.5))
    store.cancel_search(b.id)
    store.save_dataset(
        DatasetInfo(id="d1", name="d.npz", owner="alice", size=1000, sha256="0" * 64, created_at=1.0), [b"x"]
    )
    usage = store.usage("alice")
    assert usage.running_searches == 1, "the cancelled search no longer runs"
    assert usage.trials == 5, "the budgets of every kept search"
    document_bytes = usage.stored_bytes - 1000 - TRIAL_BYTES_ESTIMATE
    assert 2 * 100 < document_bytes < 2 * 2000, "the two search documents, as JSON"
    store.delete_search(b.id)
    assert store.usage("alice").trials == 3
    assert store.usage("bob").trials == 7 and store.usage("bob").running_searches == 1
