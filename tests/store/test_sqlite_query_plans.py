"""The SQLite store's hot queries use the indexes they were written for (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore

DOC = {
    "name": "plans",
    "algorithm": "random",
    "max_trials": 5,
    "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
    "params": {"x": {"uniform": [-5, 5]}},
}


def _plan(db: Path, sql: str, args: list[object]) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)]


def test_the_slot_query_walks_the_runnable_index_without_sorting(tmp_path: Path) -> None:
    db = tmp_path / "hh.db"
    store = SQLiteStore(db)
    try:
        for _ in range(3):
            store.create_search(validate(DOC))
        for allow_code in (False, True):
            sql, args = store._slot_query(None, allow_code)
            plan = _plan(db, sql, args)
            assert any("searches_runnable" in step for step in plan), plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
        one = store.list_searches()[0].id
        sql, args = store._slot_query(one, False)
        assert any("(id=?)" in step for step in _plan(db, sql, args))
    finally:
        store.close()


def test_a_file_with_the_old_status_index_gets_the_new_ones(tmp_path: Path) -> None:
    db = tmp_path / "hh.db"
    SQLiteStore(db).close()
    with sqlite3.connect(db) as conn:  # as files written before searches_runnable were
        conn.execute("DROP INDEX searches_runnable")
        conn.execute("DROP INDEX searches_by_status")
        conn.execute("CREATE INDEX searches_status ON searches(status, n_running, last_claim_at)")
    store = SQLiteStore(db)
    try:
        search = store.create_search(validate(DOC))
        claimed = store.claim("w", 60)
        assert claimed is not None and claimed.search_id == search.id
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"searches_runnable", "searches_by_status"} <= names
    assert "searches_status" not in names
