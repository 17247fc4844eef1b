"""The SQLite change feed's stamps: the hot statements (a claim's insert, a report) stamp their trial
themselves and a trigger moves the counter up; every other insert or version bump is stamped by the
fallback trigger. Either way each change gets a stamp above every earlier one, so a reader of
``trials_changed_since`` sees it (the TPE history misses nothing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storekit import search_doc

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore


def _stamps(db: Path) -> tuple[dict[str, int], int]:
    conn = sqlite3.connect(db)
    try:
        seqs = dict(conn.execute("SELECT id, seq FROM trials").fetchall())
        [[counter]] = conn.execute("SELECT value FROM trial_seq").fetchall()
    finally:
        conn.close()
    return seqs, counter


def test_every_change_gets_a_stamp_above_every_earlier_one(tmp_path: Path) -> None:
    db = tmp_path / "hh.db"
    store = SQLiteStore(db)
    s = store.create_search(validate(search_doc(max_trials=6)))
    cursor = None
    seen: list[int] = []

    def changed(expected_ids: set[str]) -> None:
        nonlocal cursor
        trials, cursor = store.trials_changed_since(s.id, cursor)
        assert {t.id for t in trials} == expected_ids
        seqs, counter = _stamps(db)
        stamps = [seqs[i] for i in expected_ids]
        assert min(stamps) > max(seen, default=0) and counter >= max(stamps) == cursor
        seen.extend(stamps)

    a = store.claim("w", 30)  # stamped by its insert
    assert a is not None and a.lease_token
    changed({a.id})
    store.heartbeat(a.id, a.lease_token, 30)  # stamped by the fallback trigger
    changed({a.id})
    _, b = store.report_and_claim(a.id, a.lease_token, TrialResult.done({"loss": 0.5}), "w", 30)
    assert b is not None and b.lease_token
    changed({a.id, b.id})  # a report and an insert in one transaction: two stamps
    store.release(b.id, b.lease_token)  # fallback
    changed({b.id})
    c = store.claim("w", 30)  # the queued trial again (fallback)
    assert c is not None and c.id == b.id and c.lease_token
    changed({b.id})
    d = store.claim("w2", 30)
    assert d is not None
    changed({d.id})
    store.cancel_search(s.id)  # one statement over both running trials
    changed({b.id, d.id})
    store.close()


def test_an_older_database_loses_its_old_triggers_and_keeps_its_stamps(tmp_path: Path) -> None:
    """A file made by a version whose triggers re-updated every row: opening it replaces them, and the
    counter goes on from where it was."""
    db = tmp_path / "hh.db"
    store = SQLiteStore(db)
    s = store.create_search(validate(search_doc(max_trials=3)))
    t = store.claim("w", 30)
    assert t is not None and t.lease_token
    store.close()
    conn = sqlite3.connect(db)
    for name in (
        "trials_stamp_update",
        "trials_stamped_update",
        "trials_stamp_insert",
        "trials_stamped_insert",
    ):
        conn.execute(f"DROP TRIGGER {name}")
    conn.executescript(
        """
        CREATE TRIGGER trials_seq_on_update AFTER UPDATE OF version ON trials BEGIN
            UPDATE trial_seq SET value = value + 1;
            UPDATE trials SET seq = (SELECT value FROM trial_seq) WHERE id = NEW.id;
        END;
        CREATE TRIGGER trials_seq_on_insert AFTER INSERT ON trials BEGIN
            UPDATE trial_seq SET value = value + 1;
            UPDATE trials SET seq = (SELECT value FROM trial_seq) WHERE id = NEW.id;
        END;
        """
    )
    conn.close()
    before, counter = _stamps(db)
    store = SQLiteStore(db)
    conn = sqlite3.connect(db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    conn.close()
    assert "trials_seq_on_update" not in names and "trials_seq_on_insert" not in names
    store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.1}))
    trials, cursor = store.trials_changed_since(s.id, before[t.id])
    assert [x.id for x in trials] == [t.id] and cursor == counter + 1
    store.close()
