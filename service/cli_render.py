"""Rich tables and panels for searches, trials and workers (the JSON the API returns, rendered)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from hyperhive.models import TrialState
from hyperhive.service.flatten import flatten

STATUS_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "cancelled": "magenta",
    "failed": "red",
    "queued": "yellow",
    "done": "green",
    "pruned": "magenta",
    "alive": "green",
    "stopped": "dim",
    "lost": "red",
}


def styled(state: str | None) -> str:
    s = state or ""
    style = STATUS_STYLE.get(s)
    return f"[{style}]{s}[/]" if style else s


def num(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def seconds(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}s"


def leaf(v: Any) -> str:
    if isinstance(v, float):
        return num(v, 5)
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    return json.dumps(v)


def searches_table(page: dict[str, Any]) -> Table:
    t = Table(title=f"searches ({len(page['items'])} of {page['total']})", title_justify="left")
    for col in ("id", "name", "owner", "status", "progress", "best", "algorithm", "created"):
        t.add_column(col, no_wrap=col in ("id", "created"))
    for s in page["items"]:
        c = s["counts"]
        t.add_row(
            s["id"],
            escape(s["name"]),
            escape(s.get("owner") or ""),
            styled(s["status"]),
            f"{c['finished']}/{s['max_trials']}",
            f"{num(s['best_value'])} ({s['objective_metric']})" if s["best_value"] is not None else "",
            s["algorithm"],
            when(s["created_at"]),
        )
    return t


def search_table(s: dict[str, Any]) -> Table:
    """One search: status, counts by state, progress, best trial."""
    t = Table(show_header=False, title=f"search {s['id']}", title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    c = s["counts"]
    t.add_row("name", escape(s["name"]))
    t.add_row("owner", escape(s.get("owner") or ""))
    t.add_row("status", styled(s["status"]))
    t.add_row("progress", f"{c['finished']}/{s['max_trials']} ({s['progress']:.0%})")
    t.add_row(
        "trials",
        ", ".join(f"{styled(k)} {c[k]}" for k in map(str, TrialState)),
    )
    t.add_row("objective", f"{s['objective_metric']} ({s['objective_mode']})")
    t.add_row("algorithm", f"{s['algorithm']}, seed {s['seed']}")
    t.add_row("created", when(s["created_at"]))
    if s.get("finished_at"):
        t.add_row("finished", when(s["finished_at"]))
    if s.get("error"):
        t.add_row("error", f"[red]{escape(s['error'])}[/]")
    best = s.get("best")
    if best:
        t.add_row(
            "best",
            f"trial {best['number']} ({best['id']}): {s['objective_metric']} = {num(best['value'], 6)}",
        )
        for k, v in flatten(best.get("config") or {}).items():
            t.add_row(escape(f"  {k}"), escape(leaf(v)))
    return t


MAX_PARAM_COLUMNS = 8


def param_text(v: Any) -> str:
    """A sampled parameter as a cell: numbers short, option names and ``(none)`` as they are."""
    return num(v, 4) if isinstance(v, float) else leaf(v)


def trials_table(page: dict[str, Any], objective: str = "value") -> Table:
    """One row per trial; the sampled parameters (by document label, option names for choices) as
    columns, the first :data:`MAX_PARAM_COLUMNS` of them (``--json`` has all)."""
    labels = list(dict.fromkeys(k for tr in page["items"] for k in tr.get("params") or {}))
    shown = labels[:MAX_PARAM_COLUMNS]
    title = f"trials ({len(page['items'])} of {page['total']})"
    if len(labels) > len(shown):
        title += f"; {len(labels) - len(shown)} more parameters with --json"
    t = Table(title=title, title_justify="left")
    for col in ("#", "id", "state", objective):
        t.add_column(col, no_wrap=col in ("#", "id"))
    for label in shown:
        t.add_column(escape(label), overflow="fold")
    for col in ("duration", "worker", "error"):
        t.add_column(col)
    for tr in page["items"]:
        err = tr.get("error") or ""
        params = tr.get("params") or {}
        t.add_row(
            str(tr["number"]),
            tr["id"],
            styled(tr["state"]),
            num(tr["value"], 6),
            *(escape(param_text(params[k])) if k in params else "" for k in shown),
            seconds(tr.get("duration")),
            tr.get("worker_id") or "",
            escape((err[:60] + "...") if len(err) > 60 else err),
        )
    return t


def trial_table(tr: dict[str, Any], title: str = "trial") -> Table:
    """A trial in full: value, config leaves, scalar metrics, timings, provenance."""
    t = Table(show_header=False, title=f"{title} {tr['number']} ({tr['id']})", title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("state", styled(tr["state"]))
    t.add_row("value", num(tr["value"], 6))
    for k, v in (tr.get("params") or {}).items():  # the sampled parameters, as the document names them
        t.add_row(escape(f"param {k}"), escape(param_text(v)))
    for k, v in flatten(tr.get("config") or {}).items():
        t.add_row(escape(f"config.{k}"), escape(leaf(v)))
    for k, v in (tr.get("metrics") or {}).items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            t.add_row(escape(f"metrics.{k}"), num(v, 6))
    if tr.get("history"):
        t.add_row("epochs", str(len(tr["history"])))
    t.add_row("duration", seconds(tr.get("duration")))
    t.add_row("worker", tr.get("worker_id") or "")
    t.add_row("attempts", str(tr.get("attempts", "")))
    if tr.get("error"):
        t.add_row("error", f"[red]{escape(tr['error'])}[/]")
    return t


def workers_table(workers: list[dict[str, Any]], title: str = "workers") -> Table:
    t = Table(title=f"{title} ({len(workers)})", title_justify="left")
    for col in ("id", "host", "pid", "gpus", "state", "activity", "trial", "last seen"):
        t.add_column(col)
    for w in workers:
        t.add_row(
            w["id"],
            escape(w["host"]),
            str(w["pid"]),
            ",".join(w["gpus"]) or "cpu",
            styled(w["state"]),
            w["status"] if w["state"] == "alive" else "",  # idle or busy
            w.get("current_trial_id") or "",
            f"{w['seconds_since_seen']:.0f}s ago",
        )
    return t


def datasets_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title=f"datasets ({len(items)})", title_justify="left")
    for col in ("id", "name", "owner", "size", "splits", "input", "classes", "uploaded"):
        t.add_column(col)
    for d in items:
        meta = d.get("meta") or {}
        splits = ", ".join(f"{k} {v}" for k, v in (meta.get("splits") or {}).items())
        t.add_row(
            d["id"],
            escape(d["name"]),
            escape(d.get("owner") or ""),
            f"{d['size'] / 1e6:.1f} MB",
            splits,
            "x".join(str(x) for x in meta.get("input_shape") or []),
            str(meta.get("classes", "")),
            when(d["created_at"]),
        )
    return t
