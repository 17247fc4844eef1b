"""The SQLite store opens one connection per thread. A thread pool retires idle threads and starts new
ones (the API server's does after 10 s idle), so a long-running server sees an endless series of
threads: the connections of ended threads must be closed, not kept until the store closes (each holds
file descriptors and a page cache; the server once ran out of descriptors)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from storekit import search_doc

from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore


def open_files(path: Path) -> int:
    """This process's file descriptors on the database file and its WAL."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            n += 1
    return n


def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    db = tmp_path / "hh.db"
    store = SQLiteStore(db)
    search = store.create_search(validate(search_doc(max_trials=3)))
    found: list[str] = []
    for _ in range(60):  # one short-lived thread after another, as a pool that retires idle threads
        t = threading.Thread(target=lambda: found.append(store.get_search(search.id).id))
        t.start()
        t.join()
    assert found == [search.id] * 60
    assert open_files(db) <= 6, open_files(db)  # this thread's and the last thread's connection

    # a connection still in use by a live thread is left alone
    go, done = threading.Event(), threading.Event()

    def long_lived() -> None:
        store.get_search(search.id)
        go.set()
        done.wait(30)
        found.append(store.get_search(search.id).id)

    t = threading.Thread(target=long_lived)
    t.start()
    go.wait(30)
    for _ in range(5):
        other = threading.Thread(target=lambda: store.count_trials(search.id))
        other.start()
        other.join()
    done.set()
    t.join()
    assert found[-1] == search.id
    store.close()
    assert open_files(db) == 0
