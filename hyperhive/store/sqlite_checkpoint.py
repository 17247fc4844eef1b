"""WAL checkpoints off the writers' path, for :class:`~hyperhive.store.sqlite.SQLiteStore`.

In WAL mode with ``synchronous=NORMAL`` a commit only appends to the WAL file; the ``fsync`` happens
when the WAL is copied back into the database (a checkpoint). SQLite's automatic checkpoint runs inside
the commit that takes the WAL past ``wal_autocheckpoint`` pages (1,000 by default), so one write in
every few dozen waits for two ``fsync`` calls: 15-30 ms on a quiet disk, hundreds of milliseconds on a
busy virtual one, in the middle of a worker's report or claim. :class:`Checkpointer` runs a
``PRAGMA wal_checkpoint(PASSIVE)`` from a background thread of its own (on its own connection) every
:data:`CHECKPOINT_EVERY` commits of the process; a passive checkpoint waits for no reader or writer and
the writers go on appending meanwhile (SQLite releases the GIL while it runs). The automatic
checkpoint stays as a backstop, at :data:`AUTOCHECKPOINT_PAGES`, for a process that commits rarely or a
thread that falls behind. Durability is SQLite's as before: the same checkpoints, the same ``fsync``
calls, made by another thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

CHECKPOINT_EVERY = 64
"""Commits of one process between two background checkpoints (a trial's claim and report write a
dozen pages or so: a checkpoint about every 800 pages)."""
AUTOCHECKPOINT_PAGES = 4000
"""SQLite's own checkpoint (in the committing connection) once the WAL holds this many pages (16 MiB at
4 KiB pages): reached only when the background thread cannot keep up."""

log = logging.getLogger("hyperhive.store")


class Checkpointer:
    """Counts commits; every :data:`CHECKPOINT_EVERY` wakes a daemon thread (started on first use) that
    checkpoints the WAL through ``connect()``'s connection (the store's per-thread connection)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], every: int = CHECKPOINT_EVERY) -> None:
        self._connect = connect
        self.every = every
        self._commits = 0
        self._wake = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        """Background checkpoints made (tests read it)."""

    def committed(self) -> None:
        """One more commit in this process."""
        self._commits += 1  # racy across threads: a checkpoint a few commits late is fine
        if self._commits >= self.every:
            self._commits = 0
            self._request()

    def _request(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self._connect().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except Exception as exc:  # the store closed under it, or the disk failed: the backstop remains
                if self._closed:
                    return
                log.debug("background WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        """Stop the thread (before the store closes its connections); waits for a checkpoint under way."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
