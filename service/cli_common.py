"""What the CLI commands share: the rich consoles, one-line errors, and finding the server and token.

Where a client command sends its requests (first found wins):
1. ``--url`` / ``--token``;
2. ``HYPERHIVE_URL`` / ``HYPERHIVE_TOKEN``;
3. the embedded server that ``hyperhive up`` runs from this folder (``<home>/up.json``), whose token
   is in ``<home>/token`` (mode 0600). That token is sent only to the URL ``up`` recorded;
4. the default ``http://127.0.0.1:8000``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from hyperhive.console import console as console  # re-exported for the CLI modules
from hyperhive.console import err_console as err_console
from hyperhive.console import fail as fail
from hyperhive.errors import HyperhiveError
from hyperhive.private_files import private_dir

if TYPE_CHECKING:
    from hyperhive.client import Client
    from hyperhive.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

UP_FILE = "up.json"
TOKEN_FILE = "token"

URL_OPTION = typer.Option(None, "--url", help="API URL (env HYPERHIVE_URL; default: the local `up`)")
TOKEN_OPTION = typer.Option(None, "--token", help="API token (env HYPERHIVE_TOKEN)", show_default=False)
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a command can meet into one line on stderr and a non-zero exit (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from pydantic import ValidationError

        from hyperhive.client import ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            raise fail(exc.message) from None
        except ValidationError as exc:  # settings from the environment or flags
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise fail(f"bad setting ({problems}); check the flags and HYPERHIVE_* variables") from None
        except HyperhiveError as exc:
            raise fail(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def read_up_file(home: Path) -> dict[str, Any] | None:
    """What ``hyperhive up`` recorded about the server it runs from ``home``, if it runs."""
    try:
        data = json.loads((home / UP_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def resolve_client(url: str | None, token: str | None) -> tuple[str, str | None]:
    """The API URL and token to use (see the module docstring)."""
    settings = settings_for(url=url, token=token)
    resolved = settings.url
    secret = settings.token.get_secret_value() if settings.token else None
    up = read_up_file(settings.home)
    if "url" not in settings.model_fields_set and up is not None:
        resolved = up["url"]
    if secret is None and up is not None and resolved.rstrip("/") == up["url"].rstrip("/"):
        try:
            secret = (settings.home / TOKEN_FILE).read_text().strip() or None
        except OSError:
            secret = None
    return resolved, secret


def make_client(url: str | None, token: str | None) -> Client:
    from hyperhive.client import Client

    resolved, secret = resolve_client(url, token)
    return Client(resolved, secret)


def settings_for(**overrides: Any) -> Settings:
    """Settings from the environment with the given flags (``None`` = not given) on top."""
    from hyperhive.settings import get_settings

    return get_settings(**overrides)


def print_json(value: Any) -> None:
    """Machine output: plain indented JSON on stdout (no colours, no wrapping)."""
    typer.echo(json.dumps(value, indent=2))
