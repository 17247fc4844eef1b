"""Caps on what one trial may store, so that every trial document stays far below MongoDB's 16 MiB.

Workers report metrics, per-epoch history, an error text and provenance ``info``; all of it comes from
code the search's owner controls (a function objective returns any dict), and classification details
grow with the square of the class count. :meth:`Store.report <hyperhive.store.base.Store.report>`,
``heartbeat`` and ``import_search`` pass them through :func:`cap_metrics`, :func:`cap_history`,
:func:`cap_error` and :func:`cap_info` on both backends; what is cut is said in
``metrics["truncated"] = True`` and ``metrics["truncated_notes"]`` (one line per cut).

- a confusion matrix (a metric named ``*confusion_matrix``) is stored for up to
  :data:`MAX_MATRIX_CLASSES` classes, per-class scores (``*per_class``) for up to
  :data:`MAX_PER_CLASS_CLASSES`; above that they are omitted (the workers do not even compute them);
- at most :data:`MAX_METRICS` metric names of at most :data:`MAX_KEY_CHARS` characters, strings cut at
  :data:`MAX_STRING_CHARS`; any other nested value over :data:`MAX_VALUE_BYTES` is omitted, and if the
  metrics are still over :data:`MAX_METRICS_BYTES` (BSON) the largest nested values go first (single
  numbers and the objective metric always stay);
- ``history``: the last :data:`MAX_HISTORY_EPOCHS` rows, each with at most :data:`MAX_HISTORY_KEYS`
  single-number values;
- ``error``: :data:`MAX_ERROR_CHARS` characters; ``info``: :data:`MAX_INFO_BYTES` (BSON).

Worst case: 4 + 2 + 0.1 MiB, plus the trial's configuration (bounded by the search document's size).
"""

from __future__ import annotations

import json
from typing import Any

import bson
import bson.errors
import orjson

MAX_MATRIX_CLASSES = 256
MAX_PER_CLASS_CLASSES = 1000
MAX_METRICS = 256
MAX_KEY_CHARS = 200
MAX_STRING_CHARS = 1000
MAX_VALUE_BYTES = 1 << 20
MAX_METRICS_BYTES = 4 << 20
MAX_HISTORY_EPOCHS = 1000
MAX_HISTORY_KEYS = 64
MAX_ERROR_CHARS = 8000
MAX_INFO_BYTES = 64 << 10


def bson_size(value: Any) -> int:
    """The size of ``value`` in a BSON document, bytes (what MongoDB's 16 MiB limit counts); for what
    BSON cannot hold (integers over 64 bits), twice its JSON length."""
    try:
        return len(bson.encode({"v": value})) - 8
    except (OverflowError, bson.errors.InvalidDocument, TypeError, ValueError):
        return 2 * len(json.dumps(value, default=str))


def surely_within(value: Any, limit: int) -> bool:
    """Whether ``value``'s :func:`bson_size` is surely at most ``limit`` without encoding it as BSON:
    when 8 bytes for each character of its JSON text fit. BSON never takes that much per character:
    at most 5 within such limits (an array element ``0,`` takes 2 characters and, at a 4-digit index,
    10 bytes: type, index key, int32); a value orjson cannot write gets False."""
    try:
        return len(orjson.dumps(value)) * 8 <= limit
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return False


def _scalar(v: Any) -> bool:
    """A single number (numpy's included) or None."""
    return (
        v is None or isinstance(v, bool | int | float) or (hasattr(v, "item") and getattr(v, "ndim", 1) == 0)
    )


def _short(v: Any) -> Any:
    if isinstance(v, str) and len(v) > MAX_STRING_CHARS:
        return v[:MAX_STRING_CHARS] + f"... ({len(v)} characters, truncated)"
    return v


def _classes(value: Any) -> int:
    """How many classes a confusion matrix or a per-class mapping covers (lists or numpy arrays)."""
    if isinstance(value, dict):
        return max((_classes(v) for v in value.values()), default=0)
    try:
        return len(value)
    except TypeError:
        return 0


def cap_metrics(metrics: dict[str, Any], keep: str | None = None) -> dict[str, Any]:
    """``metrics`` within the limits of the module docstring; ``keep`` (the objective metric) is never
    dropped. The input is not changed."""
    given = metrics.get("truncated_notes") if metrics.get("truncated") is True else None
    notes = [str(n)[:MAX_KEY_CHARS] for n in given[:20]] if isinstance(given, list) else []
    out: dict[str, Any] = {}
    items = [(k, v) for k, v in metrics.items() if k not in ("truncated", "truncated_notes")]
    if len(items) > MAX_METRICS:
        notes.append(f"{len(items)} metrics reported, the first {MAX_METRICS} stored")
        head = items[:MAX_METRICS]
        if keep is not None and keep in metrics and all(k != keep for k, _ in head):
            head[-1] = (keep, metrics[keep])
        items = head
    for key, value in items:
        name = str(key)
        if len(name) > MAX_KEY_CHARS:
            notes.append(f"a metric named {name[:40]!r}... is over {MAX_KEY_CHARS} characters: omitted")
            continue
        if _scalar(value) or isinstance(value, str):
            out[name] = _short(value)
        elif name.endswith("confusion_matrix") and _classes(value) > MAX_MATRIX_CLASSES:
            notes.append(
                f"{name}: {_classes(value)} classes, stored only up to {MAX_MATRIX_CLASSES}: omitted"
            )
        elif name.endswith("per_class") and _classes(value) > MAX_PER_CLASS_CLASSES:
            notes.append(
                f"{name}: {_classes(value)} classes, stored only up to {MAX_PER_CLASS_CLASSES}: omitted"
            )
        elif (size := bson_size(value)) > MAX_VALUE_BYTES:
            notes.append(f"{name}: {size} bytes, over {MAX_VALUE_BYTES}: omitted")
        else:
            out[name] = value
    nested = sorted((k for k, v in out.items() if not _scalar(v)), key=lambda k: -bson_size(out[k]))
    while nested and bson_size(out) > MAX_METRICS_BYTES:
        name = nested.pop(0)
        if name == keep:
            continue
        notes.append(f"{name}: omitted, the metrics were over {MAX_METRICS_BYTES} bytes")
        del out[name]
    if notes:
        out["truncated"] = True
        out["truncated_notes"] = notes
    return out


def cap_history(history: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The rows kept (the last :data:`MAX_HISTORY_EPOCHS`, single numbers only, at most
    :data:`MAX_HISTORY_KEYS` each) and a note when something was cut."""
    note = None
    rows = [r for r in history if isinstance(r, dict)]
    if len(rows) > MAX_HISTORY_EPOCHS:
        note = f"history: {len(rows)} epochs reported, the last {MAX_HISTORY_EPOCHS} stored"
        rows = rows[-MAX_HISTORY_EPOCHS:]
    out = []
    for row in rows:
        kept = {str(k): v for k, v in row.items() if _scalar(v) and len(str(k)) <= MAX_KEY_CHARS}
        if len(kept) != len(row) or len(kept) > MAX_HISTORY_KEYS:
            note = note or f"history: rows keep at most {MAX_HISTORY_KEYS} single numbers"
            kept = dict(list(kept.items())[:MAX_HISTORY_KEYS])
        out.append(kept)
    return out, note


def cap_error(error: str | None) -> str | None:
    if error is None or len(error) <= MAX_ERROR_CHARS:
        return error
    return error[:MAX_ERROR_CHARS] + f"\n... ({len(error)} characters, truncated)"


def cap_info(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` under :data:`MAX_INFO_BYTES`: its largest values dropped first, ``truncated`` set."""
    out = {str(k)[:MAX_KEY_CHARS]: _short(v) for k, v in info.items()}
    if surely_within(out, MAX_INFO_BYTES) or bson_size(out) <= MAX_INFO_BYTES:
        return out
    for key in sorted(out, key=lambda k: -bson_size(out[k])):
        del out[key]
        if bson_size(out) <= MAX_INFO_BYTES - 64:
            break
    out["truncated"] = True
    return out
