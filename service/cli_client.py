"""Client commands: ``submit``, ``follow``, ``status``, ``trials``, ``best``, ``trial``, ``cancel``,
``extend``, ``delete``, ``export``, ``workers``, ``dataset upload|list``, ``whoami``.

They talk to a server through :class:`hyperhive.client.Client` (see :mod:`hyperhive.service.cli_common` for
how the URL and token are found). Output is a rich table, or plain JSON with ``--json``. Errors are one
line on stderr with exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from hyperhive.service.cli_common import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    cli_errors,
    console,
    err_console,
    make_client,
    print_json,
)
from hyperhive.service.cli_render import (
    datasets_table,
    search_table,
    searches_table,
    trial_table,
    trials_table,
    workers_table,
)


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


class TrialSort(StrEnum):
    number = "number"
    value = "value"
    created_at = "created_at"
    finished_at = "finished_at"


EXIT_BY_STATUS = {"completed": 0, "cancelled": 0, "failed": 1}
"""Exit status of ``submit --follow`` / ``follow`` by the search's final status."""


def exit_status(s: dict[str, Any]) -> int:
    """Exit status for a final search: ``EXIT_BY_STATUS``. The store marks a search whose budget ended
    without a single ``done`` trial ``failed``; one recorded ``completed`` without a result by an earlier
    version is a failure (1) too."""
    if s["status"] == "completed" and not s["counts"].get("done") and not s.get("best"):
        return 1
    return EXIT_BY_STATUS.get(s["status"], 1)


def no_result_note(client: Any, s: dict[str, Any]) -> str | None:
    """``no trial succeeded (3 failed); last error: ...`` for a search an earlier version recorded
    ``completed`` without a done trial (see :func:`exit_status`), else None (a ``failed`` search says
    why in its own ``error``)."""
    if s["status"] != "completed" or exit_status(s) == 0:
        return None
    c = s["counts"]
    text = f"search {s['id']}: no trial succeeded ({c.get('failed', 0)} failed, {c.get('pruned', 0)} pruned)"
    page = client.trials(s["id"], state="failed", sort="finished_at", order="desc", limit=1)
    if page["items"] and page["items"][0].get("error"):
        text += f"; last error: {page['items'][0]['error']}"
    return text


def one_line(s: dict[str, Any]) -> str:
    """``search ID completed: 20/20 trials, best val_accuracy 0.944 (trial 7)``."""
    c = s["counts"]
    text = f"search {s['id']} {s['status']}: {c['finished']}/{s['max_trials']} trials"
    if s.get("best"):
        text += f", best {s['objective_metric']} {s['best']['value']:.6g} (trial {s['best']['number']})"
    if s.get("error"):
        text += f"; {s['error']}"
    return text


def follow_and_report(
    client: Any,
    search_id: str,
    interval: float,
    as_json: bool = False,
    detail: bool = True,
    on_poll: Callable[[], None] | None = None,
) -> int:
    """Follow to the end, print the summary (the search's table, or one line without ``detail``; JSON
    with ``as_json``) and return the exit status for its final status."""
    from hyperhive.service.follow import follow

    out = err_console if as_json else console
    final = follow(client, search_id, console=out, interval=interval, on_poll=on_poll)
    if as_json:
        print_json(final)
    elif detail:
        console.print(search_table(final))
    else:
        console.print(escape(one_line(final)))
    note = no_result_note(client, final)
    if note:
        err_console.print(f"[red]{escape(note)}[/]")
    return exit_status(final)


def follow_until_interrupted(client: Any, search_id: str, interval: float, as_json: bool) -> int:
    """:func:`follow_and_report` for ``submit --follow`` and ``follow``: Ctrl-C stops following only,
    says so with the commands to go on, and exits 130."""
    try:
        return follow_and_report(client, search_id, interval, as_json)
    except KeyboardInterrupt:
        err_console.print(
            f"stopped following; search {search_id} goes on "
            f"(hyperhive follow {search_id} | hyperhive cancel {search_id})"
        )
        raise typer.Exit(130) from None


def submit(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="a .yaml or .json search, or a Hyperas script (.py)",
    ),
    follow_: bool = typer.Option(False, "--follow", "-f", help="show live progress until the search ends"),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="seconds between polls with --follow"),
    max_trials: int | None = typer.Option(None, "--max-trials", help="a .py script: trials to run"),
    algorithm: str | None = typer.Option(None, "--algorithm", help="a .py script: tpe | random | anneal"),
    name: str | None = typer.Option(
        None, "--name", help="a .py script: the search's name (default: file stem)"
    ),
    seed: int | None = typer.Option(None, "--seed", help="a .py script: random seed"),
    mode: str | None = typer.Option(None, "--mode", help="a .py script: min (default) or max the loss"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="a .py script: print the space found, submit nothing"
    ),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Submit a search document or a Hyperas script (.py); print its id alone on stdout, messages on stderr
    (ID=$(hyperhive submit f.yaml) works). With --follow: follow it until it ends."""
    from hyperhive.service.cli_hyperas import is_script, script_document, space_table, submit_path

    fields = {"max_trials": max_trials, "algorithm": algorithm, "name": name, "seed": seed, "mode": mode}
    if not is_script(file) and (dry_run or any(v is not None for v in fields.values())):
        raise ValueError(
            "--max-trials, --algorithm, --name, --seed, --mode and --dry-run are for .py scripts"
        )
    if is_script(file) and dry_run:
        document = script_document(file, fields, default_max_trials=1)  # the space needs no budget
        print_json(document["params"]) if as_json else console.print(space_table(document))
        return
    with make_client(url, token) as client:
        search = submit_path(client, file, fields)
        if not follow_:
            if as_json:
                print_json(search)
            else:
                what = f"{escape(search['name'])}, {search['max_trials']} trials"
                err_console.print(f"submitted search [bold]{search['id']}[/] ({what})")
                err_console.print(f"follow it with: hyperhive follow {search['id']}")
                typer.echo(search["id"])  # alone on stdout: ID=$(hyperhive submit f.yaml)
            return
        err_console.print(f"submitted search [bold]{search['id']}[/]")
        code = follow_until_interrupted(client, search["id"], interval, as_json)
    raise typer.Exit(code)


def follow_cmd(
    search_id: str = typer.Argument(..., help="search id"),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="seconds between polls"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Show a search's live progress until it ends (Ctrl-C stops following, not the search)."""
    with make_client(url, token) as client:
        code = follow_until_interrupted(client, search_id, interval, as_json)
    raise typer.Exit(code)


def status(
    search_id: str | None = typer.Argument(None, help="a search id; without it, list searches"),
    state: str | None = typer.Option(None, "--status", help="list only searches in this status"),
    name: str | None = typer.Option(None, "--name", help="list only searches with this name"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """One search's status, trial counts, progress and best trial; or the list of searches."""
    with make_client(url, token) as client:
        if search_id is None:
            page = client.list_searches(status=state, name=name, limit=limit)
            print_json(page) if as_json else console.print(searches_table(page))
            return
        s = client.get_search(search_id)
        print_json(s) if as_json else console.print(search_table(s))


def trials(
    search_id: str = typer.Argument(..., help="search id"),
    state: str | None = typer.Option(None, "--state", help="only trials in this state"),
    sort: TrialSort = typer.Option(TrialSort.number, "--sort"),
    desc: bool = typer.Option(False, "--desc", help="descending (sort=value lists the best first anyway)"),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """A search's trials as a table."""
    with make_client(url, token) as client:
        order = "desc" if desc else None
        page = client.trials(search_id, state=state, sort=sort.value, order=order, limit=limit, offset=offset)
        if as_json:
            print_json(page)
            return
        objective = client.get_search(search_id)["objective_metric"]
        console.print(trials_table(page, objective))


def best(
    search_id: str = typer.Argument(..., help="search id"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """The best trial so far: value, configuration, metrics."""
    with make_client(url, token) as client:
        tr = client.best(search_id)
        print_json(tr) if as_json else console.print(trial_table(tr, title="best trial"))


def trial(
    trial_id: str = typer.Argument(..., help="trial id"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """One trial in full (--json includes per-epoch history and the confusion matrix)."""
    with make_client(url, token) as client:
        tr = client.trial(trial_id)
        print_json(tr) if as_json else console.print(trial_table(tr))


def cancel(
    search_id: str = typer.Argument(..., help="search id"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Cancel a search (running trials stop at their next heartbeat)."""
    with make_client(url, token) as client:
        s = client.cancel(search_id)
    console.print(f"search {s['id']} is {s['status']}")


def extend(
    search_id: str = typer.Argument(..., help="search id"),
    n: int = typer.Argument(..., min=1, help="how many trials to add"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Add N trials to a search's budget (a completed search runs again)."""
    with make_client(url, token) as client:
        s = client.extend(search_id, n)
    console.print(f"search {s['id']} now has max_trials {s['max_trials']} ({s['status']})")


def delete(
    search_id: str = typer.Argument(..., help="search id"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Delete a search and all its trials."""
    if not yes:
        typer.confirm(f"delete search {search_id} and all its trials?", abort=True)
    with make_client(url, token) as client:
        client.delete(search_id)
    console.print(f"deleted search {search_id}")


def export(
    search_id: str = typer.Argument(..., help="search id"),
    fmt: ExportFormat = typer.Option(
        ExportFormat.csv, "--format", help="csv: one row per trial; json: everything"
    ),
    out: Path | None = typer.Option(None, "--out", "-o", dir_okay=False, help="write here instead of stdout"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Export a search's trials as CSV or JSON."""
    with make_client(url, token) as client:
        text = client.export(search_id, fmt.value)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text)
        err_console.print(f"wrote {out}")


def workers(
    all_workers: bool = typer.Option(False, "--all", help="also the workers that stopped or were lost"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """The live workers: host, GPUs, current trial, last heartbeat (--all: also stopped and lost ones)."""
    with make_client(url, token) as client:
        items = client.workers()
    shown = items if all_workers else [w for w in items if w["state"] == "alive"]
    if as_json:
        print_json(shown)
        return
    console.print(workers_table(shown, title="workers" if all_workers else "live workers"))
    hidden = len(items) - len(shown)
    if hidden:
        err_console.print(f"{hidden} stopped or lost worker(s) not shown: hyperhive workers --all")


def whoami(url: str | None = URL_OPTION, token: str | None = TOKEN_OPTION) -> None:
    """Which server and token the commands use, and who the token belongs to."""
    with make_client(url, token) as client:
        me = client.me()
        console.print(f"{client.url}: {me['name']}{' (admin)' if me['admin'] else ''}")


dataset_app = typer.Typer(help="Upload and list .npz datasets.", no_args_is_help=True)


@dataset_app.command("upload")
@cli_errors
def dataset_upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="an .npz file"),
    name: str | None = typer.Option(None, "--name", help="default: the file name"),
    as_json: bool = JSON_OPTION,
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Upload an .npz (x_train, y_train[, x_val, y_val][, x_test, y_test]); print its id alone on stdout,
    messages on stderr (DS=$(hyperhive dataset upload d.npz) works)."""
    with make_client(url, token) as client:
        d = client.upload_dataset(file, name)
    if as_json:
        print_json(d)
    else:
        err_console.print(f"uploaded dataset [bold]{d['id']}[/] ({d['name']}, {d['size']} bytes)")
        err_console.print(f"use it in a search as:  dataset: {{upload: {d['id']}}}")
        typer.echo(d["id"])  # alone on stdout, like submit


@dataset_app.command("list")
@cli_errors
def dataset_list(
    as_json: bool = JSON_OPTION, url: str | None = URL_OPTION, token: str | None = TOKEN_OPTION
) -> None:
    """Your uploaded datasets (an admin: everyone's)."""
    with make_client(url, token) as client:
        items = client.datasets()
    print_json(items) if as_json else console.print(datasets_table(items))


def register(app: typer.Typer) -> None:
    """Add the client commands to ``app``."""
    for fn, name in (
        (submit, "submit"),
        (follow_cmd, "follow"),
        (status, "status"),
        (trials, "trials"),
        (best, "best"),
        (trial, "trial"),
        (cancel, "cancel"),
        (extend, "extend"),
        (delete, "delete"),
        (export, "export"),
        (workers, "workers"),
        (whoami, "whoami"),
    ):
        app.command(name)(cli_errors(fn))
    app.add_typer(dataset_app, name="dataset")
