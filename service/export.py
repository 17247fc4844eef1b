"""A search's trials as CSV (one row per trial) or as a JSON bundle ``import_search`` can read back.

CSV columns: ``number, id, state, value, attempts, worker_id, started_at, finished_at, duration``,
then ``param.<label>`` for every sampled parameter (a named choice's option name, ``(none)`` for a
null option: see :mod:`hyperhive.service.sampled`), then ``config.<path>`` for every leaf of the sampled
configurations (paths of the evaluated configuration: ``config.model.layers[1].filters``), then
``metrics.<name>`` for every final metric that is a single number (per-class lists and the confusion
matrix are in the JSON export), then ``error``. Missing cells are empty. Lists of numbers or strings
in a config are written as JSON text. ``value`` is the objective metric in its own units (hyperopt's
internal ``loss``, negated for a ``max`` objective, is left out); times are ISO 8601 in UTC
(``2026-12-01T15:20:46.577+00:00``), ``duration`` in seconds.

Text cells that a spreadsheet would read as a formula (starting with ``= + - @``, a tab or a carriage
return: OWASP's CSV-injection rule) get a leading single quote; numbers are written as they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from hyperhive.models import Search, Trial
from hyperhive.service.flatten import flatten, scalar_metrics
from hyperhive.service.schemas import PRIVATE_TRIAL_INFO

BASE_COLUMNS = (
    "number",
    "id",
    "state",
    "value",
    "attempts",
    "worker_id",
    "started_at",
    "finished_at",
    "duration",
)


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC with milliseconds, e.g. ``2026-12-01T15:20:46.577+00:00``."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v.startswith(FORMULA_STARTS):
        return "'" + v  # a spreadsheet shows it as text instead of running it
    return v


def trials_csv(trials: list[Trial], document: dict[str, Any] | None = None) -> str:
    """The trials as CSV text (see the module docstring for the columns). With the search's
    ``document``, ``param.<label>`` columns show the sampled parameters (option names, ``(none)``)."""
    from hyperhive.service.sampled import sampler

    named = sampler(document) if document else None
    rows: list[dict[str, Any]] = []
    param_cols: dict[str, None] = {}
    config_cols: dict[str, None] = {}
    metric_cols: dict[str, None] = {}
    for t in trials:
        duration = None
        if t.started_at is not None and t.finished_at is not None:
            duration = round(t.finished_at - t.started_at, 6)
        row: dict[str, Any] = {
            "number": t.number,
            "id": t.id,
            "state": str(t.state),
            "value": t.value,
            "attempts": t.attempts,
            "worker_id": t.worker_id,
            "started_at": iso_utc(t.started_at),
            "finished_at": iso_utc(t.finished_at),
            "duration": duration,
            "error": t.error,
        }
        for k, v in (named(t.vals, t.config) if named else {}).items():
            col = f"param.{k}"
            param_cols[col] = None
            row[col] = v
        for k, v in flatten(t.config or {}).items():
            col = f"config.{k}"
            config_cols[col] = None
            row[col] = v
        for k, v in scalar_metrics(t.metrics).items():
            col = f"metrics.{k}"
            metric_cols[col] = None
            row[col] = v
        rows.append(row)
    columns = [*BASE_COLUMNS, *param_cols, *config_cols, *metric_cols, "error"]
    buf = io.StringIO()
    # RFC 4180 line ends: the csv module then quotes a cell holding a carriage return, which with "\n"
    # line ends it writes bare, splitting the row in two for every reader
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return buf.getvalue()


def public_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """``Store.export_search`` output without lease tokens or reporting-token hashes."""
    trials = []
    for t in bundle.get("trials", []):
        t = dict(t)
        t["lease_token"] = None
        t["info"] = {k: v for k, v in (t.get("info") or {}).items() if k not in PRIVATE_TRIAL_INFO}
        trials.append(t)
    return {**bundle, "trials": trials}


def export_filename(search: Search, fmt: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in search.name)[:60] or "search"
    return f"{safe}-{search.id}.{fmt}"
