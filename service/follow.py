"""Following a search until it is final: a live progress bar of finished trials with the best so far.

On a terminal the bar redraws in place; when the output is a pipe or a file, one plain line is printed
every ``line_seconds`` (10 s) and when the search ends, so a log shows the search moving. Counts are
said once each: ``12/30: 10 done, 2 failed, 1 running, 17 queued``. While trials wait and no worker
is alive, the line says so.

The API server may restart while a search runs (the workers do not need it): while it cannot be reached
(or answers 503) following waits and retries for up to ``reconnect_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hyperhive.client import Client, ClientError
from hyperhive.models import SearchStatus

FINAL_STATUSES = tuple(str(s) for s in SearchStatus if s.is_final)
WORKER_CHECK_SECONDS = 5.0
NO_WORKER = "no worker is alive: start one (hyperhive worker / hyperhive up)"


def queued(s: dict[str, Any]) -> int:
    """Trials still to run: the budget not finished nor running (0 once the search is final)."""
    if s["status"] in FINAL_STATUSES:
        return 0
    c = s["counts"]
    return max(0, s["max_trials"] - c["finished"] - c["running"])


def counts_text(s: dict[str, Any]) -> str:
    """``12/30: 10 done, 2 failed, 1 running, 17 queued`` (each state once; zero counts left out but
    ``done``)."""
    c = s["counts"]
    parts = [f"{c['done']} done"]
    for key in ("failed", "pruned", "cancelled", "running"):
        if c.get(key):
            parts.append(f"{c[key]} {key}")
    if queued(s):
        parts.append(f"{queued(s)} queued")
    return f"{c['finished']}/{s['max_trials']}: {', '.join(parts)}"


def best_text(s: dict[str, Any]) -> str:
    if s.get("best_value") is None:
        return "no result yet" if s["status"] not in FINAL_STATUSES else "no result"
    return f"best {s['objective_metric']} {s['best_value']:.5g}"


def status_text(s: dict[str, Any], workers_alive: int | None) -> str:
    """The search's status when it says more than the counts (not ``running``), and a warning when
    trials wait with no worker alive."""
    parts = [] if s["status"] == "running" else [s["status"]]
    if workers_alive == 0 and s["status"] not in FINAL_STATUSES and queued(s):
        parts.append(NO_WORKER)
    return "; ".join(parts)


def progress_line(s: dict[str, Any], workers_alive: int | None = None) -> str:
    """One plain line: ``search ID (name) 12/30: 10 done, ...; best val_accuracy 0.91``."""
    status = status_text(s, workers_alive)
    line = f"search {s['id']} ({s['name']}) {counts_text(s)}; {best_text(s)}"
    return f"{line}; {status}" if status else line


class _Workers:
    """How many workers are alive, asked at most every ``WORKER_CHECK_SECONDS`` (None: unknown)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.alive: int | None = None
        self.checked = time.monotonic()  # workers just started need a moment to register

    def count(self, s: dict[str, Any]) -> int | None:
        if s["status"] in FINAL_STATUSES or s["counts"]["running"]:
            return None
        now = time.monotonic()
        if now - self.checked >= WORKER_CHECK_SECONDS:
            self.checked = now
            try:
                self.alive = sum(w["state"] == "alive" for w in self.client.workers())
            except ClientError:
                self.alive = None
        return self.alive


def follow(
    client: Client,
    search_id: str,
    *,
    console: Console,
    interval: float = 1.0,
    reconnect_seconds: float = 120.0,
    on_poll: Callable[[], None] | None = None,
    line_seconds: float = 10.0,
) -> dict[str, Any]:
    """Poll the search every ``interval`` seconds, drawing progress, until its status is final; return it.
    :class:`ClientError` when the server stays unreachable longer than ``reconnect_seconds``.
    ``on_poll`` runs before each poll (it may raise to stop following). Not on a terminal: a plain line
    every ``line_seconds`` and one at the end."""
    if not console.is_terminal:
        return _follow_lines(client, search_id, console, interval, reconnect_seconds, on_poll, line_seconds)
    workers = _Workers(client)
    search = client.get_search(search_id)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("[green]{task.fields[best]}"),
        TextColumn("[yellow]{task.fields[status]}"),
        TimeElapsedColumn(),
    )

    def fields(s: dict[str, Any]) -> dict[str, Any]:
        return {
            "total": s["max_trials"],
            "completed": s["counts"]["finished"],
            "counts": escape(counts_text(s)),
            "best": escape(best_text(s)),
            "status": escape(status_text(s, workers.count(s))),
        }

    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task(escape(search["name"]), **fields(search))
        polls = _polls(client, search, interval, reconnect_seconds, on_poll)
        for search, reachable in polls:
            if reachable:
                progress.update(task, **fields(search))
            else:
                progress.update(task, status="server unreachable, retrying")
    return search


def _polls(
    client: Client,
    search: dict[str, Any],
    interval: float,
    reconnect_seconds: float,
    on_poll: Callable[[], None] | None,
) -> Iterator[tuple[dict[str, Any], bool]]:
    """``(search, reachable)`` every ``interval`` until the search is final; while the server cannot be
    reached (connection refused, 502-504) the last search with ``False``, for ``reconnect_seconds`` at most
    (then the error is raised)."""
    unreachable_since: float | None = None
    while search["status"] not in FINAL_STATUSES:
        time.sleep(interval)
        if on_poll is not None:
            on_poll()
        try:
            search = client.get_search(search["id"])
        except ClientError as exc:
            if exc.status not in (0, 502, 503, 504):
                raise
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > reconnect_seconds:
                raise
            yield search, False
            continue
        unreachable_since = None
        yield search, True


def _follow_lines(
    client: Client,
    search_id: str,
    console: Console,
    interval: float,
    reconnect_seconds: float,
    on_poll: Callable[[], None] | None,
    line_seconds: float,
) -> dict[str, Any]:
    workers = _Workers(client)
    search = client.get_search(search_id)
    last_line, last_at = progress_line(search, workers.count(search)), time.monotonic()
    console.print(last_line, markup=False, highlight=False, soft_wrap=True)
    polls = _polls(client, search, interval, reconnect_seconds, on_poll)
    for search, reachable in polls:
        if reachable:
            line = progress_line(search, workers.count(search))
        else:
            line = f"search {search_id}: server unreachable, retrying"
        now = time.monotonic()
        final = search["status"] in FINAL_STATUSES
        if (final and line != last_line) or (not final and now - last_at >= line_seconds):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
            last_line, last_at = line, now
    return search
