"""Following a search until it is final: a live progress bar of finished trials with the best so far.

The API server may restart while a search runs (the workers do not need it): while it cannot be reached
(or answers 503) following waits and retries for up to ``reconnect_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hyperhive.client import Client, ClientError
from hyperhive.models import SearchStatus

FINAL_STATUSES = tuple(str(s) for s in SearchStatus if s.is_final)


def _best_text(s: dict[str, Any]) -> str:
    if s.get("best_value") is None:
        return "best: -"
    return f"best {s['objective_metric']} {s['best_value']:.5g}"


def _running_text(s: dict[str, Any]) -> str:
    c = s["counts"]
    parts = [f"{c['running']} running"]
    if c["failed"]:
        parts.append(f"{c['failed']} failed")
    if c["pruned"]:
        parts.append(f"{c['pruned']} pruned")
    return ", ".join(parts)


def follow(
    client: Client,
    search_id: str,
    *,
    console: Console,
    interval: float = 1.0,
    reconnect_seconds: float = 120.0,
    on_poll: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Poll the search every ``interval`` seconds, drawing progress, until its status is final; return it.
    :class:`ClientError` when the server stays unreachable longer than ``reconnect_seconds``.
    ``on_poll`` runs before each poll (it may raise to stop following)."""
    search = client.get_search(search_id)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TextColumn("{task.fields[running]}"),
        TextColumn("[green]{task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task(
            search["name"],
            total=search["max_trials"],
            completed=search["counts"]["finished"],
            status=search["status"],
            running=_running_text(search),
            best=_best_text(search),
        )
        unreachable_since: float | None = None
        while search["status"] not in FINAL_STATUSES:
            time.sleep(interval)
            if on_poll is not None:
                on_poll()
            try:
                search = client.get_search(search_id)
            except ClientError as exc:
                if exc.status not in (0, 502, 503, 504):
                    raise
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > reconnect_seconds:
                    raise
                progress.update(task, status="[yellow]server unreachable, retrying[/]")
                continue
            unreachable_since = None
            progress.update(
                task,
                total=search["max_trials"],
                completed=search["counts"]["finished"],
                status=search["status"],
                running=_running_text(search),
                best=_best_text(search),
            )
    return search
