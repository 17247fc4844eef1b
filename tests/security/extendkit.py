"""The child process of tests/security/test_extend_limit.py: a spawned child imports the module its target
lives in, so the target lives here, next to nothing but the store (the test module imports the search
spaces, hyperopt and the web app: ~3 s more in each child)."""

from __future__ import annotations

from typing import Any

from hyperhive.errors import LimitExceeded
from hyperhive.store import SQLiteStore


def extend_in_process(path: str, search_id: str, calls: int, step: int, out: Any) -> None:
    """``calls`` extends of ``step`` trials each; puts how many were accepted on ``out``."""
    store = SQLiteStore(path)
    accepted = 0
    for _ in range(calls):
        try:
            store.extend_search(search_id, step)
            accepted += 1
        except LimitExceeded:
            pass
    store.close()
    out.put(accepted)
