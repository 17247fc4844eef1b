"""Readable paths into a document, used both as error locations and as hyperopt labels.

Grammar: a top-level key as is (``training``); a mapping key as ``.key`` when it looks like an
identifier (letters, digits, ``_`` and ``-``, not starting with a digit or ``-``), otherwise as
``["key"]`` (JSON-quoted); a list index or a numbered choice option as ``[i]``. Because keys that
are not identifier-like are quoted, two different positions never get the same path.
"""

from __future__ import annotations

import json
import re

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def key_path(base: str, key: str) -> str:
    """The path of mapping entry ``key`` under ``base`` (``base`` may be "" for the root)."""
    if _PLAIN_KEY.match(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def index_path(base: str, index: int) -> str:
    """The path of list item (or numbered choice option) ``index`` under ``base``."""
    return f"{base}[{index}]"


def describe(value: object, limit: int = 40) -> str:
    """A short rendering of a value for error messages: ``null``, ``true``, ``'abc'``, ``3``,
    ``a mapping``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
