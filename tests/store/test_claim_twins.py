"""Two claims at the same moment do not both run one TPE configuration: SQLite makes a claim's
suggestion outside the write lock, so a trial that starts meanwhile is unseen by it; the write that
saves the suggestion checks the trials in flight (the engine's ``in_flight_rule``) and the claim suggests
again when one nearly duplicates it. Here with the real engine's TPE; tests/store/test_store_in_flight.py
covers the mechanism on every backend with a scripted suggester.

The space has three points, all already finished (TPE's suggestion, a repeat of the best, is the same
whatever the seed), so two suggestions made from the same history are the same configuration unless the
second sees the first running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore


def three_point_search(store: SQLiteStore) -> Any:
    doc = {
        "name": "twins",
        "algorithm": {"type": "tpe", "n_startup_trials": 3},
        "max_trials": 20,
        "seed": 1,
        "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {"k": {"choice": [1, 2, 3]}},
    }
    s = store.create_search(validate(doc))
    seen = set()
    while len(seen) < 3:  # every point finished, 1 the best
        t = store.claim("filler", 60)
        assert t is not None and t.lease_token and t.config is not None
        seen.add(t.config["params"]["k"])
        store.report(t.id, t.lease_token, TrialResult.done({"loss": float(t.config["params"]["k"])}))
    return s


def config_less_trial(store: SQLiteStore) -> Any:
    """A slot taken without a suggestion (a claimer on the slow path, before it suggests)."""
    sql, args = store._slot_query(None, True)
    t = store._take_slot(sql, args, "slow", 60, store.clock(), None)
    assert t is not None and t.config is None
    return t


@pytest.mark.parametrize("fixed", [True, False], ids=["checked", "unchecked"])
def test_a_trial_saved_while_a_claim_suggests_is_not_duplicated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    """Slow-path claimer B's suggestion lands between fast-path claimer A's suggestion and A's write."""
    store = SQLiteStore(tmp_path / "hh.db")
    three_point_search(store)
    b = config_less_trial(store)
    if not fixed:  # the check turned off: the race as it was
        monkeypatch.setattr(store.engine, "in_flight_rule", lambda search: None)
    real_propose = store._propose

    def propose_then_b_saves(row: Any) -> Any:
        monkeypatch.setattr(store, "_propose", real_propose)  # once
        proposal = real_propose(row)  # A's, from a history where B has no config yet
        store._suggest_for(b)  # B suggests (the same history) and saves
        return proposal

    monkeypatch.setattr(store, "_propose", propose_then_b_saves)
    a = store.claim("a", 60)
    b = store.get_trial(b.id)
    assert a is not None and a.config is not None and b.config is not None
    if fixed:
        assert a.config != b.config, "A runs the configuration B is running"
    else:
        assert a.config == b.config, "the race did not happen: the test proves nothing"
    store.close()


@pytest.mark.parametrize("fixed", [True, False], ids=["checked", "unchecked"])
def test_a_suggestion_saved_after_another_claims_write_is_not_duplicated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    """Fast-path claimer A's whole claim lands between slow-path claimer B's suggestion and B's write."""
    store = SQLiteStore(tmp_path / "hh.db")
    three_point_search(store)
    b = config_less_trial(store)
    if not fixed:
        monkeypatch.setattr(store.engine, "in_flight_rule", lambda search: None)
    engine = store.engine
    real_suggest = engine.suggest
    claimed: list[Any] = []

    def suggest_then_a_claims(feed: Any, search: Any, trial: Any) -> Any:
        monkeypatch.setattr(engine, "suggest", real_suggest)  # once
        made = real_suggest(feed, search, trial)  # B's, from a history without A
        claimed.append(store.claim("a", 60))  # A suggests (the same history) and saves
        return made

    monkeypatch.setattr(engine, "suggest", suggest_then_a_claims)
    b = store._suggest_for(b)
    [a] = claimed
    assert a is not None and a.config is not None and b.config is not None
    if fixed:
        assert a.config != b.config, "B runs the configuration A is running"
    else:
        assert a.config == b.config, "the race did not happen: the test proves nothing"
    store.close()


def test_random_search_claims_read_nothing_more(tmp_path: Path) -> None:
    """The check is TPE's: a random search's claim does not read the trials in flight."""
    store = SQLiteStore(tmp_path / "hh.db")
    doc = {
        "name": "r",
        "algorithm": "random",
        "max_trials": 3,
        "seed": 1,
        "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {"k": {"choice": [1, 2, 3]}},
    }
    store.create_search(validate(doc))
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    t = store.claim("w", 60)
    conn.set_trace_callback(None)
    assert t is not None and t.config is not None
    assert not [s for s in statements if "state IN ('running', 'queued')" in s]
    store.close()
