"""``hyperhive quota``: read and set per-user quotas through the API (an admin token; a user may
``show`` their own). See :mod:`hyperhive.quotas` for what each limit counts.

- ``hyperhive quota show NAME``
- ``hyperhive quota list``
- ``hyperhive quota set NAME [--max-running-searches N] [--max-stored-bytes N] [--max-trials N]``:
  each value an integer, ``unlimited``, or ``default`` (follow the server's default again); limits not
  given keep their current override
- ``hyperhive quota reset NAME``: drop the override
"""

from __future__ import annotations

from typing import Any

import typer

from hyperhive.service.cli_common import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    cli_errors,
    console,
    make_client,
    print_json,
)

quota_app = typer.Typer(
    help="Per-user quotas (admins): running searches, stored bytes, trials.", no_args_is_help=True
)

FIELDS = ("max_running_searches", "max_stored_bytes", "max_trials")
_VALUE_HELP = "an integer >= 0, 'unlimited', or 'default' (the server's default)"


def parse_limit(flag: str, text: str) -> int | str | None:
    """``"12"`` -> 12, ``"unlimited"`` -> None, ``"default"`` -> "default"; else a ValueError naming
    the flag."""
    t = text.strip().lower()
    if t in ("unlimited", "none"):
        return None
    if t == "default":
        return "default"
    try:
        value = int(t.replace("_", ""))
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not {_VALUE_HELP}") from None
    if value < 0:
        raise ValueError(f"{flag}: {text!r} is not {_VALUE_HELP}")
    return value


def _shown(value: Any) -> str:
    return "unlimited" if value is None else f"{value:,}"


def _print(q: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"quota of {q['owner']}", title_justify="left")
    for col in ("limit", "used", "allowed", "set by"):
        table.add_column(col)
    override = q.get("override") or {}
    used = q["usage"]
    for field, usage_key in zip(FIELDS, ("running_searches", "stored_bytes", "trials"), strict=True):
        table.add_row(
            field,
            f"{used[usage_key]:,}",
            _shown(q["limits"][field]),
            "admin" if field in override else "default",
        )
    console.print(table)


@quota_app.command("show")
@cli_errors
def quota_show(
    name: str = typer.Argument(..., help="the user (token name)"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """A user's limits, what they use, and which limits an admin set."""
    with make_client(url, token) as client:
        q = client.quota(name)
    print_json(q) if as_json else _print(q)


@quota_app.command("list")
@cli_errors
def quota_list(
    as_json: bool = JSON_OPTION, url: str | None = URL_OPTION, token: str | None = TOKEN_OPTION
) -> None:
    """The server's defaults and every user's override."""
    with make_client(url, token) as client:
        q = client.quotas()
    if as_json:
        print_json(q)
        return
    console.print("defaults: " + ", ".join(f"{k} {_shown(v)}" for k, v in q["defaults"].items()))
    for owner, override in q["overrides"].items():
        console.print(
            f"{owner}: " + (", ".join(f"{k} {_shown(v)}" for k, v in override.items()) or "(defaults)")
        )


@quota_app.command("set")
@cli_errors
def quota_set(
    name: str = typer.Argument(..., help="the user (token name)"),
    max_running_searches: str | None = typer.Option(None, "--max-running-searches", help=_VALUE_HELP),
    max_stored_bytes: str | None = typer.Option(None, "--max-stored-bytes", help=_VALUE_HELP),
    max_trials: str | None = typer.Option(None, "--max-trials", help=_VALUE_HELP),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Override some of a user's limits (the others keep their current override)."""
    given = {
        field: parse_limit("--" + field.replace("_", "-"), text)
        for field, text in zip(FIELDS, (max_running_searches, max_stored_bytes, max_trials), strict=True)
        if text is not None
    }
    if not given:
        raise ValueError("nothing to set: give --max-running-searches, --max-stored-bytes or --max-trials")
    with make_client(url, token) as client:
        override = dict(client.quota(name).get("override") or {})
        for field, value in given.items():
            if value == "default":
                override.pop(field, None)
            else:
                override[field] = value
        q = client.set_quota(name, override)
    print_json(q) if as_json else _print(q)


@quota_app.command("reset")
@cli_errors
def quota_reset(
    name: str = typer.Argument(..., help="the user (token name)"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Drop a user's override: the server's defaults apply again."""
    with make_client(url, token) as client:
        client.delete_quota(name)
    console.print(f"quota of {name}: the server's defaults apply")


def register(app: typer.Typer) -> None:
    app.add_typer(quota_app, name="quota")
