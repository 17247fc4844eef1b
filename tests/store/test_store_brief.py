"""``Store.list_trials_brief``: the API's trial list read, run against every backend."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from storekit import search_doc

from hyperhive.models import TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import Store


def test_brief_list_is_the_full_list_without_history_info_or_lease(store: Store) -> None:
    """Same trials in the same order as ``list_trials`` for every sort, direction, state and window;
    only ``history``, ``info`` and the lease token are left out (a running trial's appended epochs too)."""
    s = store.create_search(validate(search_doc(max_trials=7)), owner="alice")
    other = store.create_search(validate(search_doc(max_trials=2)), owner="alice")
    claimed = [store.claim("w", search_id=s.id) for _ in range(6)]
    assert all(t is not None and t.lease_token for t in claimed)
    for t, v in zip(claimed[:3], (0.5, 0.1, 0.9), strict=True):
        assert t and t.lease_token
        hist = [{"epoch": 1, "loss": v + 1}, {"epoch": 2, "loss": v}]
        store.report(t.id, t.lease_token, TrialResult.done({"loss": v, "acc": [1, 2]}, history=hist))
    failed, running = claimed[3], claimed[4]
    assert failed and failed.lease_token and running and running.lease_token
    store.report(failed.id, failed.lease_token, TrialResult.failed("boom"))
    store.heartbeat(running.id, running.lease_token, 30, new_epochs=[{"epoch": 1, "loss": 3.0}], from_epoch=0)
    assert store.claim("w", search_id=other.id) is not None
    full = store.list_trials(s.id)
    assert any(t.history for t in full) and any(t.info for t in full) and any(t.lease_token for t in full)
    for sort, descending, state, (limit, offset) in itertools.product(
        ("number", "value", "created_at", "finished_at"),
        (False, True),
        (None, TrialState.DONE, "running"),
        ((None, 0), (2, 1), (100, 5)),
    ):
        kw = {"sort": sort, "descending": descending, "state": state, "limit": limit, "offset": offset}
        expected = [replace(t, history=[], info={}, lease_token=None) for t in store.list_trials(s.id, **kw)]
        assert store.list_trials_brief(s.id, **kw) == expected, kw
        assert Store.list_trials_brief(store, s.id, **kw) == expected, "the default reads the same"
    brief = {t.id: t for t in store.list_trials_brief(s.id)}
    assert brief[claimed[0].id].metrics == {"loss": 0.5, "acc": [1, 2]} and brief[failed.id].error == "boom"
    assert brief[running.id].lease_expires_at is not None and brief[running.id].worker_id == "w"
    assert store.list_trials_brief("missing") == []
    with pytest.raises(ValueError):
        store.list_trials_brief(s.id, sort="lease_token")
