"""``hyperhive store``: move searches between stores (SQLite <-> MongoDB) and check that a store answers.

- ``hyperhive store export --store URL [SEARCH_ID ...|--all] --out FILE.jsonl``
- ``hyperhive store import --store URL FILE.jsonl [--skip-existing] [--owner NAME | --keep-owners]``
- ``hyperhive store ping --store URL``

The file's records, and how an import checks them, are :mod:`hyperhive.store.exchange`'s. API tokens
are not exported: they are credentials of one deployment; create new ones on the target. What an import
brings in is owned by ``--owner NAME`` or, by default, by nobody (only admin tokens see it);
``--keep-owners`` keeps the owners the file records (a file exported from this same deployment).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from hyperhive.errors import HyperhiveError
from hyperhive.store.base import Store
from hyperhive.store.exchange import all_search_ids, export_searches, import_records

store_app = typer.Typer(
    help="Move searches between stores (SQLite <-> MongoDB) and check a store.", no_args_is_help=True
)

STORE_OPTION = typer.Option(
    None, "--store", help="store URL (env HYPERHIVE_STORE; default sqlite:///.hyperhive/hyperhive.db)"
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _shown(url: str) -> str:
    from hyperhive.store.urls import redact_url

    return redact_url(url)


@contextlib.contextmanager
def _opened(store: str | None, must_exist: bool = True) -> Iterator[Store]:
    """The store the flag or ``HYPERHIVE_STORE`` names; errors become one line and an exit code. A SQLite
    file must exist unless ``must_exist`` is false (``import`` may start a new store): ``ping`` or ``export``
    with a mistyped path would otherwise create an empty store and report it as fine."""
    from hyperhive.cli_store import open_cli_store
    from hyperhive.settings import get_settings

    try:
        url = get_settings(store=store).store
    except HyperhiveError as exc:  # a bad setting: one line, like every command
        raise _fail(str(exc), 2) from None
    s = open_cli_store(
        url,
        must_exist=must_exist,
        missing_hint="run this where the store is (the folder of `hyperhive up`) or fix --store "
        "/ HYPERHIVE_STORE",
    )
    try:
        yield s
    except HyperhiveError as exc:
        raise _fail(str(exc)) from None
    except BrokenPipeError:  # `store export -o - | head` closed stdout: typer ends quietly
        raise
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        s.close()


@store_app.command("export")
def export_command(
    search_ids: list[str] = typer.Argument(None, help="ids of the searches to export", show_default=False),
    all_searches: bool = typer.Option(False, "--all", help="export every search in the store"),
    out: str = typer.Option(..., "--out", "-o", help="the JSON Lines file to write ('-' for stdout)"),
    store: str | None = STORE_OPTION,
    datasets: bool = typer.Option(
        True, "--datasets/--no-datasets", help="include the uploaded datasets the searches train on"
    ),
) -> None:
    """Export searches with all their trials (and their uploaded datasets) to a JSON Lines file."""
    if bool(search_ids) == all_searches:
        raise _fail("name the searches to export, or pass --all (not both)", 2)
    with _opened(store) as s:
        ids = all_search_ids(s) if all_searches else list(search_ids)
        if out == "-":
            summary = export_searches(s, ids, sys.stdout, datasets=datasets)
        else:
            path = Path(out)
            partial = path.with_name(path.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8") as f:
                    summary = export_searches(s, ids, f, datasets=datasets)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
    typer.echo(f"exported {summary.describe()} to {out}", err=out == "-")


@store_app.command("import")
def import_command(
    file: str = typer.Argument(..., help="a file written by `hyperhive store export` ('-' for stdin)"),
    store: str | None = STORE_OPTION,
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="skip searches whose id the store already holds instead of stopping"
    ),
    owner: str | None = typer.Option(
        None,
        "--owner",
        help="the user (token name) who owns the imported searches and datasets; default: nobody, so "
        "only admin tokens see them",
    ),
    keep_owners: bool = typer.Option(
        False,
        "--keep-owners",
        help="keep the owners the file records (only for a file exported from this same deployment)",
    ),
) -> None:
    """Import searches, trials and datasets from a file written by `hyperhive store export`.

    Every search is checked like a submitted one; the file's owners are ignored unless --keep-owners."""
    if owner is not None and keep_owners:
        raise _fail("give --owner or --keep-owners, not both", 2)
    if owner is not None and not owner.strip():
        raise _fail("--owner: the name is empty", 2)
    kw: dict[str, Any] = {"skip_existing": skip_existing, "owner": owner, "keep_owners": keep_owners}
    with _opened(store, must_exist=False) as s:
        if file == "-":
            summary = import_records(s, sys.stdin, **kw)
        else:
            with open(file, encoding="utf-8") as f:
                summary = import_records(s, f, **kw)
    typer.echo(f"imported {summary.describe()} into {_shown(s.url)}")


@store_app.command("ping")
def ping_command(store: str | None = STORE_OPTION) -> None:
    """Check that the store answers (and, for MongoDB, that the indexes exist)."""
    with _opened(store) as s:
        s.ping()
        n = s.count_searches()
    typer.echo(f"ok: {type(s).__name__} at {_shown(s.url)} answers ({n} searches)")


def register(app: typer.Typer) -> None:
    """Add the ``store`` command group (``export``, ``import``, ``ping``) to the ``hyperhive`` app."""
    app.add_typer(store_app, name="store")
