"""How every command that works on the store itself (``worker``, ``retrain``, ``token``, ``store``)
opens it: one helper, one error policy.

- a bad store URL: ``error: ...`` and exit :data:`EXIT_USAGE` (2);
- ``must_exist`` and a SQLite URL naming no file: exit 2 (a worker never creates an empty store: a
  mistyped path would otherwise be waited on forever);
- a store that cannot be reached: exit :data:`EXIT_STORE` (3), naming the URL with its password masked.

Errors of what the command then does with the store stay the command's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hyperhive.errors import BadStoreURL, StoreUnavailable

if TYPE_CHECKING:
    from hyperhive.store.base import Store

EXIT_USAGE = 2
EXIT_STORE = 3


MISSING_HINT = (
    "start `hyperhive up` or `hyperhive serve` there first, or fix --store "
    "(sqlite:///relative/path.db or sqlite:////absolute/path.db)"
)


def open_cli_store(url: str, *, must_exist: bool = False, missing_hint: str = MISSING_HINT) -> Store:
    """The store ``url`` names, or a one-line error and an exit (see the module docstring);
    ``missing_hint`` ends the error of a missing SQLite file."""
    from hyperhive.console import fail
    from hyperhive.store import open_store, redact_url, sqlite_path

    try:
        path = sqlite_path(url.strip())
        if must_exist and path and path != ":memory:" and not Path(path).is_file():
            raise fail(
                f"no store at {Path(path).resolve()} (from {redact_url(url)}): {missing_hint}", EXIT_USAGE
            )
        return open_store(url)
    except BadStoreURL as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except StoreUnavailable as exc:
        raise fail(f"cannot reach the store {redact_url(url)}: {exc}", EXIT_STORE) from None


@contextlib.contextmanager
def cli_store(url: str, *, must_exist: bool = False, missing_hint: str = MISSING_HINT) -> Iterator[Store]:
    """:func:`open_cli_store` as a context manager that closes the store."""
    store = open_cli_store(url, must_exist=must_exist, missing_hint=missing_hint)
    try:
        yield store
    finally:
        store.close()
