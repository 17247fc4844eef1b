"""Server-side commands: ``serve``, ``token create|list|revoke``, ``up`` and ``run``.

``token`` works on the store directly (no server needed). ``up`` is the embedded default (see
:mod:`hyperhive.service.embedded`); ``run FILE`` is ``up`` + submit + follow + best + stop in one command,
with the
bundled lecture example when no file is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import time
from importlib import resources
from pathlib import Path
from types import FrameType

import typer
from rich.markup import escape
from rich.panel import Panel

from hyperhive.private_files import create_private_file
from hyperhive.service.cli_common import (
    JSON_OPTION,
    cli_errors,
    console,
    err_console,
    print_json,
    settings_for,
)
from hyperhive.service.cli_hyperas import is_script, script_document, submit_path
from hyperhive.store import redact_url

LECTURE_EXAMPLE = "lecture-cnn.yaml"
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

STORE_OPTION = typer.Option(
    None, "--store", help="store URL (env HYPERHIVE_STORE; default sqlite:///.hyperhive/hyperhive.db)"
)


def example_path(name: str = LECTURE_EXAMPLE) -> Path:
    """A search document bundled in ``search_spaces/examples``."""
    path = Path(str(resources.files("search_spaces") / "examples" / name))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled example {name} is missing from search_spaces/examples")
    return path


def check_search_file(path: Path) -> None:
    """Validate a search document here, with the checks the server runs on submit, so that ``run`` and
    ``up --submit`` stop at once on a broken file instead of after starting the store, API and workers.
    ValueError: the file and every problem (``path: reason``) on one line."""
    from hyperhive import search_spaces

    fmt = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path.suffix.lower())
    try:
        if is_script(path):
            script_document(path, {})
        else:
            search_spaces.load(path.read_bytes(), fmt)
    except search_spaces.SpecError as exc:
        raise ValueError(f"{path}: {'; '.join(str(e) for e in exc.errors)}") from None


# ---------------------------------------------------------------------------------------------- serve
def serve(
    store: str | None = STORE_OPTION,
    host: str | None = typer.Option(
        None, "--host", help="address to bind (env HYPERHIVE_HOST; default 127.0.0.1)"
    ),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="port (env HYPERHIVE_PORT; default 8000)"
    ),
    no_auth: bool = typer.Option(False, "--no-auth", help="no tokens needed: for a laptop only"),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error"),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="API processes sharing the port (one per core the API may use); each opens the store",
    ),
) -> None:
    """Run the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from hyperhive.service import NO_AUTH_WARNING
    from hyperhive.store import open_store

    settings = settings_for(store=store, host=host, port=port, no_auth=True if no_auth else None)
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    if settings.no_auth:
        err_console.print(Panel(f"[bold]{NO_AUTH_WARNING}[/]", title="WARNING", style="bold red"))
    if workers == 1:
        from hyperhive.service.app import create_app

        app = create_app(settings)
    else:  # the app is imported by each API process, not by the one that supervises them
        open_store(
            settings.store
        ).close()  # a bad store fails here, once, and its tables exist before the fork
    console.print(
        f"Hyperhive API on http://{settings.host}:{settings.port}"
        f"  (docs: /docs, store: {redact_url(settings.store)}"
        f"{f', {workers} processes' if workers > 1 else ''})"
    )
    if workers == 1:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            log_level=log_level,
        )
        return
    # Several processes: uvicorn starts each from an import string and restarts one that dies. Each
    # process builds its app from the environment, so the flags go there (a child reads them as if set
    # by the user); logging is configured in each process from the same dictionary.
    os.environ.update(
        HYPERHIVE_STORE=settings.store,
        HYPERHIVE_HOST=settings.host,
        HYPERHIVE_PORT=str(settings.port),
        HYPERHIVE_NO_AUTH="true" if settings.no_auth else "false",
    )
    uvicorn.run(
        "hyperhive.service.app:create_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_config=log_config(log_level),
        access_log=False,
        log_level=log_level,
    )


def log_config(level: str) -> dict[str, object]:
    """``logging.basicConfig(level, LOG_FORMAT, stderr)`` as a dictConfig, for each API process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


# ---------------------------------------------------------------------------------------------- tokens
token_app = typer.Typer(
    help="Create, list and revoke API tokens (on the store, no server needed).", no_args_is_help=True
)


def _open_store(store: str | None, create: bool = False) -> contextlib.AbstractContextManager[object]:
    """The store the flag or ``HYPERHIVE_STORE`` names. A SQLite file must exist unless ``create``: a
    token made in a new, empty store by a mistyped path or the wrong folder would only ever get 401."""
    from hyperhive.cli_store import cli_store

    hint = (
        "run this where the store is (the folder of `hyperhive up`), fix --store / HYPERHIVE_STORE, "
        "or add --create to start a new store there"
    )
    return cli_store(settings_for(store=store).store, must_exist=not create, missing_hint=hint)


@token_app.command("create")
@cli_errors
def token_create(
    name: str = typer.Argument(..., help="who the token is for: searches are owned by this name"),
    admin: bool = typer.Option(False, "--admin", help="may see and change every user's searches"),
    code: bool = typer.Option(
        False,
        "--code",
        help="may submit code that --allow-code workers run (Hyperas scripts): remote code execution",
    ),
    store: str | None = STORE_OPTION,
    create: bool = typer.Option(False, "--create", help="make the SQLite store if it does not exist yet"),
) -> None:
    """Create a token. The secret is printed once, alone on the last line; only its hash is stored."""
    if not TOKEN_NAME.match(name):
        raise ValueError(
            f"bad token name {name!r}: 1-100 characters of letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    with _open_store(store, create=create) as s:
        info, secret = s.create_token(name, admin=admin, code=code)  # type: ignore[attr-defined]
    kind = ("admin " if admin else "") + ("code " if code else "")
    typer.echo(f"created {kind}token {info.id} for {name!r}; it is shown only now:")
    typer.echo(secret)


@token_app.command("list")
@cli_errors
def token_list(store: str | None = STORE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The tokens (never their secrets)."""
    from rich.table import Table

    from hyperhive.service.cli_render import when

    with _open_store(store) as s:
        tokens = s.list_tokens()  # type: ignore[attr-defined]
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return
    table = Table(title=f"tokens ({len(tokens)})", title_justify="left")
    for col in ("id", "name", "admin", "code", "created", "last used", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            t.id, t.name, "yes" if t.admin else "", "yes" if t.code else "", when(t.created_at),
            when(t.last_used_at) or "never",
            "[red]revoked[/]" if t.revoked else "",
        )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
@cli_errors
def token_revoke(
    token_id: str = typer.Argument(..., help="the token's id (see `token list`)"),
    store: str | None = STORE_OPTION,
) -> None:
    """Revoke a token: it stops working at once."""
    with _open_store(store) as s:
        s.revoke_token(token_id)  # type: ignore[attr-defined]
    console.print(f"revoked token {token_id}")


# ---------------------------------------------------------------------------------------------- up / run
def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _all_final(client: object, search_id: str | None) -> bool:
    from hyperhive.service.follow import FINAL_STATUSES

    if search_id is not None:
        return client.get_search(search_id)["status"] in FINAL_STATUSES  # type: ignore[attr-defined]
    page = client.list_searches(limit=500)  # type: ignore[attr-defined]
    return page["total"] > 0 and all(s["status"] in FINAL_STATUSES for s in page["items"])


def run_embedded(
    *,
    store: str | None,
    home: Path | None,
    workers: int,
    gpus: str | None,
    port: int | None,
    submit_file: Path | None,
    follow: bool,
    exit_when_done: bool,
    stop_timeout: float,
    worker_args: list[str],
    allow_objective: list[str] | None = None,
    launcher: str = "up",
) -> int:
    """Start the embedded deployment, optionally submit and follow a search, wait for Ctrl-C/SIGTERM (or
    for the searches to end with ``exit_when_done``), stop everything. Returns the exit status."""
    from hyperhive.client import Client, ClientError
    from hyperhive.service.cli_client import exit_status, follow_and_report, no_result_note
    from hyperhive.service.cli_render import search_table, trial_table
    from hyperhive.service.embedded import Embedded, EmbeddedError
    from hyperhive.settings import DEFAULT_OBJECTIVE_MODULES, parse_objective_prefixes

    if exit_when_done and workers < 1 and not gpus:
        raise ValueError("no workers to run the search: give --workers 1 or more (or --gpus)")
    if submit_file is not None:
        check_search_file(submit_file)
        if is_script(submit_file):  # a Hyperas script: this user's own code, run by this machine's workers
            worker_args = [*worker_args, "--allow-code"]
    allowed = parse_objective_prefixes(allow_objective) if allow_objective else []
    if gpus:
        from hyperhive.devices import missing_gpu_warning

        warning = missing_gpu_warning([g.strip() for g in gpus.split(",")])
        if warning:
            err_console.print(f"[yellow]warning: {escape(warning)}[/]")
    settings = settings_for(home=home, store=store)
    if "store" not in settings.model_fields_set:
        settings = settings.model_copy(update={"store": f"sqlite:///{settings.home / 'hyperhive.db'}"})
    home_dir = settings.home
    create_private_file(home_dir / "logs" / "server.log")  # 0600 in 0700 folders, like the token
    logging.basicConfig(
        level=logging.INFO, format=LOG_FORMAT, filename=str(home_dir / "logs" / "server.log"), force=True
    )
    own_search_only = exit_when_done and submit_file is not None  # `run FILE`: its search, nothing else
    emb = Embedded(
        settings, workers=workers, port=port, gpus=gpus, worker_args=worker_args, stop_timeout=stop_timeout,
        allow_objective=[p for p in allowed if p not in DEFAULT_OBJECTIVE_MODULES], launcher=launcher,
        defer_workers=own_search_only,
    )  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    started = False
    try:
        emb.start()
        started = True
        n = 1 if gpus else workers
        where = "this folder" if home is None else f"this folder with HYPERHIVE_HOME={home_dir}"
        moved = port is None and not emb.url.endswith(f":{settings.port}")  # the default port was taken
        taken = f"port {settings.port} is taken; " if moved else ""
        console.print(
            Panel(
                f"API      {emb.url}   ({taken}docs {emb.url}/docs)\n"
                f"token    {emb.token}   (kept in {home_dir / 'token'})\n"
                f"store    {redact_url(emb.store_url)}\n"
                f"workers  {n} ({'GPUs ' + gpus if gpus else 'CPU'}), logs in {home_dir / 'logs'}\n"
                f"From another shell in {where}: hyperhive submit FILE --follow   (or set\n"
                f"HYPERHIVE_URL={emb.url} and HYPERHIVE_TOKEN=<token> anywhere). Ctrl-C stops everything.",
                title=f"hyperhive {launcher}",
                expand=False,
            )
        )
        console.print(f"dashboard: {emb.url}/login?token={emb.token}", soft_wrap=True, highlight=False)
        client = Client(emb.url, emb.token)
        search_id = None
        if submit_file is not None:
            s = submit_path(client, submit_file)
            search_id = s["id"]
            console.print(f"submitted search [bold]{search_id}[/] ({s['name']}, {s['max_trials']} trials)")
            console.print(f"watch it at {emb.url}/searches/{search_id}", soft_wrap=True, highlight=False)
            if own_search_only:
                from hyperhive.service.follow import FINAL_STATUSES

                emb.start_workers(search_id)
                others = [
                    o for o in client.list_searches(limit=500)["items"]
                    if o["id"] != search_id and o["status"] not in FINAL_STATUSES
                ]  # fmt: skip
                if others:
                    err_console.print(
                        f"{len(others)} other unfinished search(es) in this store stay queued "
                        f"(e.g. {others[0]['id']}): `run` works on its own search only; `hyperhive up` "
                        "runs them all"
                    )

        def check_workers(fatal: bool = True) -> None:
            """Report workers that exited; with ``fatal``, fail once none is left. Workers of ``run``
            (``--search``) exit 0 when their search ends: that is no failure."""
            exited = emb.exited_workers()
            if not exited:
                return
            ended = own_search_only and search_id is not None and _all_final(client, search_id)
            for w in exited:
                rc = w.proc.returncode
                if not (ended and rc == 0):
                    err_console.print(
                        f"[yellow]worker {w.index} exited with status {rc}; see {w.log_path}[/]"
                    )
            if fatal and not ended and all(w.reported_exit for w in emb.processes):
                raise EmbeddedError(f"every worker exited; see the logs in {home_dir / 'logs'}")

        if follow and search_id is not None:
            code = follow_and_report(client, search_id, interval=1.0, detail=False, on_poll=check_workers)
            with contextlib.suppress(ClientError):  # 404: no trial is done
                console.print(trial_table(client.best(search_id), title="best trial"))
            if exit_when_done:
                return code
        while True:
            check_workers(fatal=exit_when_done)
            if exit_when_done and _all_final(client, search_id):
                if search_id is not None:
                    final = client.get_search(search_id)
                    console.print(search_table(final))
                    note = no_result_note(client, final)
                    if note:
                        err_console.print(f"[red]{escape(note)}[/]")
                    code = exit_status(final)
                return code
            time.sleep(0.5)
    except KeyboardInterrupt:
        err_console.print("stopping: workers hand back their trials ...")
        code = 130 if exit_when_done else 0  # `up` is meant to end with Ctrl-C; `run` was cut short
    finally:
        emb.stop()
        signal.signal(signal.SIGTERM, previous)
        if started:  # not after a refused start: nothing was running
            err_console.print("hyperhive stopped")
    return code


HOME_OPTION = typer.Option(
    None, "--home", help="folder of the embedded store, token and logs (default .hyperhive)"
)
WORKERS_OPTION = typer.Option(1, "--workers", "-w", min=0, max=64, help="local CPU worker processes")
GPUS_OPTION = typer.Option(None, "--gpus", help="one worker with a trial process per GPU, e.g. 0,1")
PORT_OPTION = typer.Option(
    None, "--port", min=1, max=65535, help="API port (default 8000, or a free one if taken)"
)
STOP_OPTION = typer.Option(30.0, "--stop-timeout", min=0.0, help="seconds workers get to hand back trials")
WORKER_ARG_OPTION = typer.Option([], "--worker-arg", help="extra argument for each worker (repeatable)")
ALLOW_OBJECTIVE_OPTION = typer.Option(
    [],
    "--allow-objective",
    help="module prefix whose functions the workers may run as objectives, besides "
    "hyperhive.demo_objectives (repeatable; env HYPERHIVE_ALLOW_OBJECTIVE, comma-separated)",
)


def up(
    store: str | None = STORE_OPTION,
    home: Path | None = HOME_OPTION,
    workers: int = WORKERS_OPTION,
    gpus: str | None = GPUS_OPTION,
    port: int | None = PORT_OPTION,
    example: bool = typer.Option(False, "--example", help="submit the bundled lecture example"),
    submit: Path | None = typer.Option(
        None, "--submit", exists=True, dir_okay=False, help="submit this search"
    ),
    follow: bool = typer.Option(False, "--follow", help="show the submitted search's progress"),
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="stop once every search has ended"),
    stop_timeout: float = STOP_OPTION,
    worker_arg: list[str] = WORKER_ARG_OPTION,
    allow_objective: list[str] = ALLOW_OBJECTIVE_OPTION,
) -> None:
    """The embedded default: a SQLite store in ./.hyperhive, the API on 127.0.0.1 and local workers.
    Prints the URL and an admin token; Ctrl-C stops everything cleanly."""
    if example and submit is not None:
        raise ValueError("give --example or --submit, not both")
    file = example_path() if example else submit
    code = run_embedded(
        store=store, home=home, workers=workers, gpus=gpus, port=port, submit_file=file, follow=follow,
        exit_when_done=exit_when_done, stop_timeout=stop_timeout, worker_args=worker_arg,
        allow_objective=allow_objective, launcher="up",
    )  # fmt: skip
    raise typer.Exit(code)


def run(
    file: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, help="a search (default: the lecture CNN example)"
    ),
    store: str | None = STORE_OPTION,
    home: Path | None = HOME_OPTION,
    workers: int = WORKERS_OPTION,
    gpus: str | None = GPUS_OPTION,
    port: int | None = PORT_OPTION,
    stop_timeout: float = STOP_OPTION,
    worker_arg: list[str] = WORKER_ARG_OPTION,
    allow_objective: list[str] = ALLOW_OBJECTIVE_OPTION,
) -> None:
    """One command, end to end: start the embedded store, API and workers, submit FILE, follow it, print
    the best trial, stop. Exit status 0 when the search completed."""
    code = run_embedded(
        store=store, home=home, workers=workers, gpus=gpus, port=port,
        submit_file=file or example_path(), follow=True, exit_when_done=True, stop_timeout=stop_timeout,
        worker_args=worker_arg, allow_objective=allow_objective, launcher="run",
    )  # fmt: skip
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``token``, ``up`` and ``run`` to ``app``."""
    app.command("serve")(cli_errors(serve))
    app.command("up")(cli_errors(up))
    app.command("run")(cli_errors(run))
    app.add_typer(token_app, name="token")
