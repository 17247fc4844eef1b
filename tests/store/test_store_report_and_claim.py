"""Store.report_and_claim (a worker's report of its trial and claim of the next, in one call), on every
backend: the report's rules, then the claim's (queued first, fair across searches, restricted to one
search), nothing claimed when the report is refused."""

from __future__ import annotations

from typing import Any

import pytest
from storekit import FakeClock, search_doc

from hyperhive.errors import LeaseLost, NotFound
from hyperhive.models import SearchStatus, Trial, TrialResult, TrialState, WorkerInfo
from hyperhive.search_spaces import validate
from hyperhive.store import Store


def create(store: Store, **overrides: Any) -> Any:
    return store.create_search(validate(search_doc(**overrides)), owner="alice")


def done(value: float, **extra: Any) -> TrialResult:
    return TrialResult.done({"loss": value, **extra})


def claimed(store: Store, worker: str = "w", **kwargs: Any) -> Trial:
    t = store.claim(worker, 30, **kwargs)
    assert t is not None and t.lease_token
    return t


def test_reports_then_claims_the_next_slot(store: Store, clock: FakeClock) -> None:
    s = create(store, max_trials=3)
    store.register_worker(WorkerInfo(id="w", host="h", pid=1, started_at=0, last_seen=0))
    t = claimed(store)
    assert t.lease_token
    reported, nxt = store.report_and_claim(t.id, t.lease_token, done(0.3, extra=1), "w", 30)
    assert reported == store.get_trial(t.id), "the reported trial as stored"
    assert reported.state == TrialState.DONE and reported.value == 0.3 and reported.lease_token is None
    assert nxt is not None and nxt.number == 1 and nxt.state == TrialState.RUNNING and nxt.worker_id == "w"
    assert nxt.lease_token and nxt.lease_expires_at == pytest.approx(clock.now + 30)
    assert nxt.config is not None and nxt.vals and nxt == store.get_trial(nxt.id)
    search = store.get_search(s.id)
    assert (search.counts.done, search.counts.running, search.best_trial_id) == (1, 1, t.id)
    assert store.list_workers()[0].current_trial_id == nxt.id


def test_the_next_slot_gets_the_suggestion_a_claim_would_give(store: Store, tmp_path: Any) -> None:
    """Random search: the same configuration for the slot as a plain report then claim gives (on a
    second store with the same search and seed)."""
    from hyperhive.store import SQLiteStore

    other = SQLiteStore(tmp_path / "other.db")
    try:
        got: list[list[Any]] = []
        for st, combined in ((store, True), (other, False)):
            create(st, max_trials=4)
            t: Trial | None = claimed(st)
            configs = []
            while t is not None:
                configs.append(t.config)
                assert t.lease_token
                if combined:
                    t = st.report_and_claim(t.id, t.lease_token, done(0.5), "w", 30)[1]
                else:
                    st.report(t.id, t.lease_token, done(0.5))
                    t = st.claim("w", 30)
            got.append(configs)
        assert len(got[0]) == 4 and got[0] == got[1]
    finally:
        other.close()


def test_the_last_slot_completes_the_search_and_claims_another_searchs_trial(store: Store) -> None:
    a = create(store, name="a", max_trials=1)
    b = create(store, name="b", max_trials=2)
    t = claimed(store, search_id=a.id)
    assert t.lease_token
    _, nxt = store.report_and_claim(t.id, t.lease_token, done(0.2), "w", 30)
    assert store.get_search(a.id).status == SearchStatus.COMPLETED
    assert nxt is not None and nxt.search_id == b.id and nxt.config is not None
    assert nxt.lease_token
    _, last = store.report_and_claim(nxt.id, nxt.lease_token, done(0.1), "w", 30, search_id=a.id)
    assert last is None, "restricted to a search with no slot left: nothing"
    assert store.get_search(b.id).counts.running == 0


def test_a_refused_report_claims_nothing(store: Store, clock: FakeClock) -> None:
    s = create(store, max_trials=3)
    t = claimed(store)
    assert t.lease_token
    clock.advance(31)  # the lease expires; another worker takes the trial over
    again = claimed(store, "w2")
    assert again.id == t.id
    with pytest.raises(LeaseLost):
        store.report_and_claim(t.id, t.lease_token, done(0.3), "w", 30)
    search = store.get_search(s.id)
    assert (search.counts.total, search.counts.running, search.counts.done) == (1, 1, 0)
    with pytest.raises(NotFound):
        store.report_and_claim("missing", "x", done(0.3), "w", 30)
    with pytest.raises(ValueError, match="state"):
        store.report_and_claim(again.id, again.lease_token or "", TrialResult(TrialState.RUNNING), "w2", 30)
    assert store.get_search(s.id).counts.total == 1


def test_a_cancelled_search_refuses_the_report_and_nothing_is_claimed(store: Store) -> None:
    a = create(store, name="a", max_trials=3)
    b = create(store, name="b", max_trials=3)
    t = claimed(store, search_id=a.id)
    assert t.lease_token
    store.cancel_search(a.id)
    with pytest.raises(LeaseLost):
        store.report_and_claim(t.id, t.lease_token, done(0.3), "w", 30)
    assert store.get_trial(t.id).state == TrialState.CANCELLED
    assert store.get_search(b.id).counts.total == 0, "no trial of another search was claimed"


def test_a_repeated_report_is_counted_once_and_the_claim_goes_ahead(store: Store) -> None:
    s = create(store, max_trials=3)
    t = claimed(store)
    assert t.lease_token
    first = store.report(t.id, t.lease_token, done(0.3))
    reported, nxt = store.report_and_claim(t.id, t.lease_token, done(0.1), "w", 30)
    assert reported.value == 0.3 and reported.version == first.version
    assert nxt is not None and nxt.number == 1
    assert store.get_search(s.id).counts.done == 1


def test_a_queued_trial_comes_before_a_new_slot(store: Store) -> None:
    create(store, max_trials=4)
    t1, t2 = claimed(store), claimed(store, "w2")
    assert t1.lease_token and t2.lease_token
    store.release(t2.id, t2.lease_token)
    _, nxt = store.report_and_claim(t1.id, t1.lease_token, done(0.3), "w", 30)
    assert nxt is not None and nxt.id == t2.id and nxt.config == t2.config and nxt.attempts == 1


def test_an_expired_lease_is_swept_before_the_claim(store: Store, clock: FakeClock) -> None:
    create(store, max_trials=4)
    lost = claimed(store, "dead")
    clock.advance(20)
    t = claimed(store)
    assert t.lease_token
    clock.advance(15)  # dead's lease (30 s) expired, ours did not
    _, nxt = store.report_and_claim(t.id, t.lease_token, done(0.3), "w", 30)
    assert nxt is not None and nxt.id == lost.id and nxt.attempts == 2 and nxt.worker_id == "w"


def test_one_worker_alternates_between_searches_as_claims_do(store: Store) -> None:
    a = create(store, name="a", max_trials=10)
    b = create(store, name="b", max_trials=10)
    t = claimed(store)
    per = {a.id: 0, b.id: 0}
    for _ in range(6):
        per[t.search_id] += 1
        assert t.lease_token
        nxt = store.report_and_claim(t.id, t.lease_token, done(0.3), "w", 30)[1]
        assert nxt is not None
        t = nxt
    assert per == {a.id: 3, b.id: 3}


def test_tpe_suggests_after_the_report(store: Store) -> None:
    """A suggestion that reads the history sees the reported result: TPE's next trial is the one a
    report followed by a claim gets."""
    s = create(store, algorithm={"type": "tpe", "n_startup_trials": 2}, max_trials=6)
    t = claimed(store)
    for i in range(4):
        assert t.lease_token
        _, nxt = store.report_and_claim(t.id, t.lease_token, done(0.1 * i), "w", 30)
        assert nxt is not None and nxt.config is not None
        history = store.engine.history(store, store.get_search(s.id))
        assert any(d["result"].get("loss") == pytest.approx(0.1 * i) for d in history.trials)
        t = nxt
