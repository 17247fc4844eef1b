"""WAL checkpoints run in the SQLite store's background thread, not in a writer's commit."""

from __future__ import annotations

import threading
from pathlib import Path

from storekit import search_doc

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore
from hyperhive.store.sqlite_checkpoint import AUTOCHECKPOINT_PAGES


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_checkpoints_run_in_the_background_thread_and_stop_with_the_store(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    store = SQLiteStore(tmp_path / "hh.db")
    store._checkpointer.every = 8
    [row] = store._read("PRAGMA wal_autocheckpoint")
    assert row[0] == AUTOCHECKPOINT_PAGES, "SQLite's own checkpoint only as a backstop"
    store.create_search(validate(search_doc(max_trials=30)))
    while (t := store.claim("w", 30)) is not None:
        assert t.lease_token
        store.report(t.id, t.lease_token, TrialResult.done({"loss": 0.5}))
    assert len(checkpoint_threads()) == before + 1
    deadline = threading.Event()
    for _ in range(100):
        if store._checkpointer.checkpoints:
            break
        deadline.wait(0.05)
    assert store._checkpointer.checkpoints >= 1
    store.close()
    assert len(checkpoint_threads()) == before, "closing the store ends its thread"
    again = SQLiteStore(tmp_path / "hh.db")  # the data are all there
    assert again.get_search(again.list_searches()[0].id).counts.done == 30
    again.close()


def test_a_store_that_never_writes_starts_no_thread(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    store = SQLiteStore(tmp_path / "hh.db")
    store.list_searches()
    assert len(checkpoint_threads()) == before
    store.close()
