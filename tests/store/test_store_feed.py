"""The change feed (``Store.trials_changed_since`` and ``Store.trial_rows``), on every backend: each
write of a trial is returned by the next read after it, once, with the trial as it is now, through
claims, suggestions, heartbeats, releases, reports, lease expiry, search failure and cancellation; a
reader that applies every batch holds exactly the store's trials."""

from __future__ import annotations

from typing import Any

from storekit import FakeClock, search_doc

from hyperhive.models import Trial, TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import Store


class Mirror:
    """A reader of the feed: applies each batch to its own copy of the search's trials."""

    def __init__(self, store: Store, search_id: str) -> None:
        self.store, self.search_id = store, search_id
        self.cursor: Any = None
        self.trials: dict[str, Trial] = {}
        self.row_cursor: Any = None

    def read(self) -> dict[str, TrialState]:
        """The trials this read returned (each at most once), with their states."""
        batch, self.cursor = self.store.trials_changed_since(self.search_id, self.cursor)
        ids = [t.id for t in batch]
        assert len(ids) == len(set(ids)), f"a trial returned twice in one batch: {ids}"
        rows, self.row_cursor = self.store.trial_rows(self.search_id, self.row_cursor)
        assert sorted(r.id for r in rows) == sorted(ids), "trial_rows follows the same changes"
        self.trials.update((t.id, t) for t in batch)
        return {t.id: t.state for t in batch}

    def assert_current(self) -> None:
        """The mirror holds exactly the store's trials, field for field."""
        stored = {t.id: t for t in self.store.list_trials(self.search_id)}
        assert self.trials == stored


def test_each_write_is_read_once_through_a_trials_life(store: Store, clock: FakeClock) -> None:
    s = store.create_search(validate(search_doc(max_trials=4, max_retries=1)), owner="alice")
    other = store.create_search(validate(search_doc(name="other", max_trials=2)), owner="alice")
    feed = Mirror(store, s.id)
    assert feed.read() == {} and feed.read() == {}

    a = store.claim("w", 30, search_id=s.id)
    assert a is not None and a.lease_token and a.config is not None
    assert feed.read() == {a.id: TrialState.RUNNING}, "a claim (slot, trial, suggestion) is one change"
    assert feed.trials[a.id].config == a.config
    assert feed.read() == {}

    store.heartbeat(a.id, a.lease_token, 30, new_epochs=[{"loss": 0.9}], from_epoch=0)
    assert feed.read() == {a.id: TrialState.RUNNING} and len(feed.trials[a.id].history) == 1
    store.release(a.id, a.lease_token)
    assert feed.read() == {a.id: TrialState.QUEUED}
    again = store.claim("w", 30, search_id=s.id)
    assert again is not None and again.id == a.id and again.lease_token
    assert feed.read() == {a.id: TrialState.RUNNING}, "a queued trial claimed again"
    store.report(a.id, again.lease_token, TrialResult.done({"loss": 0.3}))
    assert feed.read() == {a.id: TrialState.DONE} and feed.trials[a.id].value == 0.3
    store.report(a.id, again.lease_token, TrialResult.done({"loss": 0.3}))
    assert feed.read() == {}, "a repeated report changes nothing"

    b, c = store.claim("w", 5, search_id=s.id), store.claim("w", 5, search_id=s.id)
    assert b and c
    assert feed.read() == {b.id: TrialState.RUNNING, c.id: TrialState.RUNNING}
    assert store.claim("w", 5, search_id=other.id) is not None
    assert feed.read() == {}, "another search's trials are not in this feed"
    clock.advance(10)
    store.requeue_expired()
    assert feed.read() == {b.id: TrialState.QUEUED, c.id: TrialState.QUEUED}, "expired leases"
    b2, c2 = store.claim("w", 5, search_id=s.id), store.claim("w", 5, search_id=s.id)
    assert b2 and c2 and {b2.id, c2.id} == {b.id, c.id}
    assert feed.read() == {b.id: TrialState.RUNNING, c.id: TrialState.RUNNING}
    clock.advance(10)
    store.requeue_expired()  # out of retries: both fail ("worker lost")
    assert feed.read() == {b.id: TrialState.FAILED, c.id: TrialState.FAILED}

    d = store.claim("w", 30, search_id=s.id)
    assert d is not None and d.lease_token
    assert feed.read() == {d.id: TrialState.RUNNING}
    store.cancel_search(s.id)
    assert feed.read() == {d.id: TrialState.CANCELLED}, "cancelling a search cancels its open trial"
    assert feed.read() == {}
    feed.assert_current()


def test_a_search_error_cancels_the_open_trials_in_the_feed(store: Store) -> None:
    s = store.create_search(validate(search_doc(max_trials=4)), owner="alice")
    feed = Mirror(store, s.id)
    a, b, c = (store.claim("w", 30, search_id=s.id) for _ in range(3))
    assert a and b and c and a.lease_token
    assert feed.read() == {a.id: TrialState.RUNNING, b.id: TrialState.RUNNING, c.id: TrialState.RUNNING}
    store.report(a.id, a.lease_token, TrialResult.failed("the model cannot be built", search_error=True))
    assert feed.read() == {
        a.id: TrialState.FAILED,
        b.id: TrialState.CANCELLED,
        c.id: TrialState.CANCELLED,
    }
    feed.assert_current()


def test_a_fresh_reader_gets_everything_then_only_changes(store: Store) -> None:
    s = store.create_search(validate(search_doc(max_trials=6)), owner="alice")
    first = Mirror(store, s.id)
    for _ in range(3):
        t = store.claim("w", 30, search_id=s.id)
        assert t and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.5}))
        first.read()
    late = Mirror(store, s.id)
    assert len(late.read()) == 3, "cursor None: every trial"
    t = store.claim("w", 30, search_id=s.id)
    assert t is not None
    assert late.read() == {t.id: TrialState.RUNNING} == first.read()
    late.assert_current()
    first.assert_current()


def test_an_imported_search_is_in_its_feed(store: Store) -> None:
    s = store.create_search(validate(search_doc(max_trials=3)), owner="alice")
    t = store.claim("w", 30, search_id=s.id)
    assert t and t.lease_token
    store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.5}))
    bundle = store.export_search(s.id)
    store.delete_search(s.id)
    store.import_search(bundle, owner="alice")
    feed = Mirror(store, s.id)
    assert feed.read() == {t.id: TrialState.DONE}
    nxt = store.claim("w", 30, search_id=s.id)
    assert nxt is not None
    assert feed.read() == {nxt.id: TrialState.RUNNING}, "numbers continue after the imported ones"
    feed.assert_current()
