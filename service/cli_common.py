"""What the CLI commands share: the rich consoles, one-line errors, and finding the server and token.

Where a client command sends its requests (first found wins):
1. ``--url`` / ``--token``;
2. ``HYPERHIVE_URL`` / ``HYPERHIVE_TOKEN``;
3. the embedded server that ``hyperhive up`` runs from this folder (``<home>/up.json``), with the token
   in ``<home>/token``, only when neither a URL nor a token was given. Both files must be this user's
   and private (0600, as ``up`` writes them: a cloned or unpacked folder's files are not), the pid ``up``
   recorded must be a live ``hyperhive`` process and its URL a loopback one. That token is sent only to
   that URL, and a token from ``--token``/``HYPERHIVE_TOKEN`` is never sent to a URL read from a file;
4. the default ``http://127.0.0.1:8000``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
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
LOOPBACK_URL = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}\Z")

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
        except BrokenPipeError:  # `... | head` closed our stdout: typer ends quietly, as CLIs do
            raise
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


def pid_alive(pid: object) -> bool:
    """Whether ``pid`` is a running process other than this one."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _private_file(path: Path) -> bool:
    """A regular file of this user that no one else may read or write (as :func:`write_private` makes)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _is_hyperhive(pid: int) -> bool:
    """Linux: whether the process's command line names hyperhive (elsewhere: assumed so)."""
    try:
        return b"hyperhive" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()


def local_up(home: Path) -> tuple[str, str] | None:
    """The URL and token of the ``hyperhive up`` running from ``home``, when its files can be trusted
    (see the module docstring), else None."""
    up = read_up_file(home)
    token_path = home / TOKEN_FILE
    if up is None or not (_private_file(home / UP_FILE) and _private_file(token_path)):
        return None
    if not LOOPBACK_URL.match(up["url"]) or not pid_alive(up.get("pid")) or not _is_hyperhive(up["pid"]):
        return None
    try:
        secret = token_path.read_text().strip()
    except OSError:
        return None
    return (up["url"], secret) if secret else None


def resolve_client(url: str | None, token: str | None) -> tuple[str, str | None]:
    """The API URL and token to use (see the module docstring)."""
    settings = settings_for(url=url, token=token)
    secret = settings.token.get_secret_value() if settings.token else None
    explicit_url = "url" in settings.model_fields_set
    if explicit_url and secret is not None:
        return settings.url, secret
    up = local_up(settings.home)
    if up is None:
        return settings.url, secret
    if not explicit_url and secret is None:
        return up
    if explicit_url and settings.url.rstrip("/") == up[0]:  # the URL `up` printed, without its token
        return settings.url, up[1]
    return settings.url, secret


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
