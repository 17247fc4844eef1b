"""The dashboard's lightest reads, on every backend: ``trial_heads`` (every trial of a search without
parameter values or epochs, following changes) and ``trial_rows_of`` (compact rows of chosen trials)."""

from __future__ import annotations

from test_store_contract import create, done

from hyperhive.models import TrialResult, TrialState
from hyperhive.store import Store
from hyperhive.store.rows import TrialHead


def test_trial_heads_are_the_rows_light_fields_and_follow_changes(store: Store) -> None:
    s = create(store, max_trials=5)
    other = create(store, max_trials=2)
    a, b = store.claim("w", search_id=s.id), store.claim("w", search_id=s.id)
    assert a and b and a.lease_token and b.lease_token
    store.report(a.id, a.lease_token, done(0.3))
    heads, cursor = store.trial_heads(s.id)
    rows, _ = store.trial_rows(s.id)
    assert sorted(heads) == sorted(TrialHead.of(r) for r in rows)
    assert {h.id: (h.state, h.value) for h in heads} == {
        a.id: (TrialState.DONE, 0.3),
        b.id: (TrialState.RUNNING, None),
    }
    assert sorted(Store.trial_heads(store, s.id)[0]) == sorted(heads), "the default reads the same"
    assert store.trial_heads(s.id, cursor)[0] == [] and store.trial_heads(other.id)[0] == []
    store.report(b.id, b.lease_token, TrialResult.failed("boom"))
    c = store.claim("w", search_id=s.id)
    assert c is not None
    changed, cursor = store.trial_heads(s.id, cursor)
    assert {h.id: h.state for h in changed} == {b.id: TrialState.FAILED, c.id: TrialState.RUNNING}
    assert all(h.version == store.get_trial(h.id).version for h in changed)
    assert store.trial_heads(s.id, cursor)[0] == []


def test_trial_rows_of_reads_the_chosen_trials_rows(store: Store) -> None:
    s = create(store, max_trials=4)
    trials = []
    for _ in range(3):
        t = store.claim("w", search_id=s.id)
        assert t is not None and t.lease_token is not None
        trials.append(t)
    store.report(trials[0].id, trials[0].lease_token or "", done(0.5))
    rows = {r.id: r for r in store.trial_rows(s.id)[0]}
    wanted = [trials[2].id, trials[0].id, "no-such-trial", trials[0].id]
    got = store.trial_rows_of(wanted)
    assert sorted(got) == sorted([rows[trials[0].id], rows[trials[2].id]])
    assert sorted(Store.trial_rows_of(store, wanted)) == sorted(got), "the default reads the same"
    assert store.trial_rows_of([]) == []
