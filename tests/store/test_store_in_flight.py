"""A suggestion is made without the trials that other claimers start while it is being made; a policy
with an ``in_flight_rule`` (TPE's: no near-duplicate of a trial in flight) gets its suggestion made
again when such a trial turns out to be its twin, on every backend and both ways a claim saves a
suggestion (with the slot in one step, SQLite; on a config-less trial afterwards, every backend).

The suggester here is scripted so the interleaving is exact: it picks the first choice no running
trial it can see holds, then lets "another worker" act before its answer is saved (what a second
claimer does during a TPE suggestion of tens of milliseconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from storekit import search_doc

from hyperhive.models import Search, Trial, TrialState
from hyperhive.policy import InFlightRule, Policy, TrialFeed, default_policy
from hyperhive.search_spaces import validate
from hyperhive.store import Store

CHOICES = ("a", "b", "c", "d")


class AvoidsWhatItSees:
    """Picks the first of :data:`CHOICES` that no running trial it can see holds; ``during`` runs once,
    after the pick and before the answer is returned."""

    def __init__(self, rule: bool = True) -> None:
        self.during: Callable[[], None] | None = None
        self.rule = rule
        self.calls = 0

    def suggest(self, feed: TrialFeed, search: Search, trial: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls += 1
        seen, _ = feed.trials_changed_since(search.id, None)
        running = {
            t.vals["kind"][0] for t in seen if t.state == TrialState.RUNNING and t.vals and t.id != trial.id
        }
        pick = next(c for c in CHOICES if c not in running)
        hook, self.during = self.during, None
        if hook is not None:
            hook()
        return {"kind": [pick]}, {"kind": pick}

    def history_free(self, search: Search) -> bool:
        return False  # it reads the trials running

    def in_flight_rule(self, search: Search) -> InFlightRule | None:
        if not self.rule:
            return None
        return lambda vals, others: any(vals == other for other in others)

    def forget(self, search_id: str) -> None:
        pass


def scripted(store: Store, rule: bool = True) -> AvoidsWhatItSees:
    suggester = AvoidsWhatItSees(rule)
    store._policy = Policy(suggester=suggester, pruner=default_policy().pruner)  # type: ignore[attr-defined]
    return suggester


def one_choice_search(store: Store) -> Search:
    doc = search_doc(algorithm="tpe", max_trials=6, params={"kind": {"choice": list(CHOICES)}})
    return store.create_search(validate(doc), owner="alice")


def kind(trial: Trial | None) -> str:
    assert trial is not None and trial.config is not None and trial.state == TrialState.RUNNING
    return str(trial.config["kind"])


@pytest.mark.parametrize("rule", [True, False])
def test_a_twin_saved_while_suggesting_for_a_config_less_trial_is_suggested_again(
    store: Store, rule: bool
) -> None:
    search = one_choice_search(store)
    suggester = scripted(store, rule)
    # two claimers each hold a trial without a configuration (slots taken, suggestions not yet made)
    t0 = store._claim_new_slot("w0", 60.0, store.clock(), search.id)
    t1 = store._claim_new_slot("w1", 60.0, store.clock(), search.id)
    assert t0 is not None and t1 is not None and t0.config is None and t1.config is None
    # w1 suggests "a" (nothing running has a config), and meanwhile w0 saves "a" for its own trial
    suggester.during = lambda: kind(store._suggest_for(t0)) == "a" or pytest.fail("w0 did not get 'a'")
    mine = store._suggest_for(t1)
    if rule:
        assert kind(mine) == "b", "the twin of a trial in flight is suggested again, seeing it"
        assert suggester.calls == 3
    else:  # a policy without the rule (random search) keeps its first answer
        assert kind(mine) == "a"
        assert suggester.calls == 2


def test_a_twin_saved_while_suggesting_for_a_new_slot_is_suggested_again(store: Store) -> None:
    search = one_choice_search(store)
    suggester = scripted(store)
    t0 = store._claim_new_slot("w0", 60.0, store.clock(), search.id)
    assert t0 is not None
    # w1's claim suggests "a" for the next slot, and meanwhile w0 saves "a" for the trial it holds
    suggester.during = lambda: kind(store._suggest_for(t0)) == "a" or pytest.fail("w0 did not get 'a'")
    mine = store.claim("w1", 60.0, search_id=search.id)
    assert kind(mine) == "b"
    running = [t for t in store.list_trials(search.id) if t.state == TrialState.RUNNING]
    assert sorted(kind(t) for t in running) == ["a", "b"] and len({t.number for t in running}) == 2


def test_the_last_attempt_is_saved_whatever_it_clashes_with(store: Store) -> None:
    """A policy that keeps proposing a twin (a space with one point left) still gets its trial."""
    search = one_choice_search(store)
    suggester = scripted(store)
    t0 = store._claim_new_slot("w0", 60.0, store.clock(), search.id)
    t1 = store._claim_new_slot("w1", 60.0, store.clock(), search.id)
    assert t0 is not None and t1 is not None
    store._set_suggestion(t0.id, str(t0.lease_token), {"kind": ["a"]}, {"kind": "a"})
    suggester.in_flight_rule = lambda search: lambda vals, others: True  # type: ignore[method-assign]
    mine = store._suggest_for(t1)
    assert kind(mine) == "b" and suggester.calls == 3


def test_tpe_rule_flags_near_duplicates_and_random_search_has_none(store: Store) -> None:
    from hyperhive.engine import Engine

    engine = Engine()
    tpe = store.create_search(
        validate(search_doc(algorithm="tpe", params={"x": {"uniform": [0, 10]}, "k": {"choice": [1, 2]}})),
        owner="alice",
    )
    rnd = store.create_search(validate(search_doc(params={"x": {"uniform": [0, 10]}})), owner="alice")
    rule = engine.in_flight_rule(tpe)
    assert rule is not None
    a = {"params.x": [5.0], "params.k": [0]}
    assert rule(a, [{"params.x": [5.05], "params.k": [0]}])  # within 1 % of the range: a twin
    assert not rule(a, [{"params.x": [5.2], "params.k": [0]}, {"params.x": [5.0], "params.k": [1]}])
    assert not rule(a, [])
    assert engine.in_flight_rule(rnd) is None
