"""Turning text into a document (a JSON-like mapping), with the size limits of the language.

A document is what :func:`parse_text` returns and what ``validate`` takes: a ``dict`` whose keys
are strings and whose values are ``str``, ``int``, ``float`` (finite), ``bool``, ``None``, lists
and such dicts. Anything else (YAML dates, sets, binary, NaN, non-string keys) is an error.

YAML is read with ``yaml.SafeLoader`` plus three changes: ``1e-4`` is a float (YAML 1.1 would
read it as a string), dates stay strings, and duplicate keys in one mapping are errors.
Aliases are allowed; they expand to copies, and a document whose expansion exceeds
``MAX_NODES`` values (an "alias bomb") is rejected without being expanded in memory.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import DOCUMENT_LOC, ErrorList, SpecError
from .limits import MAX_BYTES, MAX_DEPTH, MAX_NODES, MAX_PARAMETERS, MAX_TRIALS_LIMIT
from .paths import index_path, key_path

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_PARAMETERS",
    "MAX_TRIALS_LIMIT",
    "normalize_document",
    "parse_text",
]

_FORMATS = {
    "json": "json",
    "application/json": "json",
    "text/json": "json",
    "yaml": "yaml",
    "yml": "yaml",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
    "text/plain": None,
    "application/octet-stream": None,
}

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"


_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in


class _Loader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2-style exponent floats, string dates and no duplicate keys."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _format_of(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    key = fmt.split(";", 1)[0].strip().lower()
    if key not in _FORMATS:
        raise SpecError.single(DOCUMENT_LOC, f"unsupported format {fmt!r}; expected yaml or json")
    return _FORMATS[key]


def _yaml_error(exc: yaml.YAMLError) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context and "duplicate" not in str(problem) else str(problem)
    if mark is not None:
        text = f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {text}"
    else:
        text = f"YAML syntax error: {text}"
    return SpecError.single(DOCUMENT_LOC, text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise SpecError.single(
            DOCUMENT_LOC, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise SpecError.single(DOCUMENT_LOC, f"nested deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # e.g. integers longer than Python's digit limit
        raise SpecError.single(DOCUMENT_LOC, f"JSON error: {exc}") from None


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except RecursionError:
        raise SpecError.single(DOCUMENT_LOC, f"nested deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # PyYAML constructors raise assorted errors on odd explicit tags
        raise SpecError.single(DOCUMENT_LOC, f"YAML error: {type(exc).__name__}: {exc}") from None


def parse_text(text: str | bytes, fmt: str | None = None) -> dict[str, Any]:
    """Parse a YAML or JSON search document into a normalised document (see the module doc).

    ``fmt`` is ``"yaml"``, ``"json"``, a matching content type (``application/json``,
    ``application/yaml``, ``application/x-yaml``, ``text/yaml``; parameters such as
    ``; charset=utf-8`` are ignored) or ``None`` to detect: JSON when the text parses as a
    JSON object, YAML otherwise. ``bytes`` must be UTF-8 (a BOM is allowed).

    Raises SpecError (and nothing else) for: bad syntax (with line and column when known),
    duplicate keys, a document that is not a mapping, more than MAX_BYTES, deeper than
    MAX_DEPTH, more than MAX_NODES values, or values JSON cannot hold.
    """
    kind = _format_of(fmt)
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError.single(DOCUMENT_LOC, f"the document is {size} bytes; the limit is {MAX_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError.single(DOCUMENT_LOC, f"the document is not UTF-8: {exc.reason}") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError.single(
            DOCUMENT_LOC, "the document holds characters that are not valid UTF-8"
        ) from None

    loaded: Any
    if kind == "json":
        loaded = _load_json(text)
    elif kind == "yaml":
        loaded = _load_yaml(text)
    else:
        try:
            loaded = json.loads(text, object_pairs_hook=_no_duplicates)
        except Exception:  # not JSON: read it as YAML
            loaded = None
        if not isinstance(loaded, dict):
            loaded = _load_yaml(text)
    if loaded is None:
        raise SpecError.single(DOCUMENT_LOC, "the document is empty")
    return normalize_document(loaded)


class _Walker:
    """Copies a mapping into a normalised document, counting values and checking depth."""

    def __init__(self, errors: ErrorList) -> None:
        self.errors = errors
        self.nodes = 0

    def copy(self, value: Any, loc: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SpecError.single(
                DOCUMENT_LOC, f"the document holds more than {MAX_NODES} values (YAML aliases expand)"
            )
        if isinstance(value, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                raise SpecError.single(DOCUMENT_LOC, f"nested deeper than {MAX_DEPTH} levels (at {loc})")
            if isinstance(value, Mapping):
                out: dict[str, Any] = {}
                for key, item in value.items():
                    if not isinstance(key, str) or not _encodable(key):
                        self.errors.add(
                            loc or DOCUMENT_LOC, f"keys must be strings, got {_type_text(key)}; quote it"
                        )
                        continue
                    out[key] = self.copy(item, key_path(loc, key), depth + 1)
                return out
            return [self.copy(item, index_path(loc, i), depth + 1) for i, item in enumerate(value)]
        if isinstance(value, str):
            if not _encodable(value):
                self.errors.add(loc or DOCUMENT_LOC, "the string holds characters that are not valid UTF-8")
                return None
            return value
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.errors.add(loc or DOCUMENT_LOC, f"numbers must be finite, got {value}")
                return None
            return float(value)
        self.errors.add(
            loc or DOCUMENT_LOC,
            f"values of type {type(value).__name__} are not allowed; quote it as a string",
        )
        return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_text(key: object) -> str:
    if isinstance(key, str):
        return "a string that is not valid UTF-8"
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return repr(key)
    return f"a {type(key).__name__}"


def normalize_document(doc: Any) -> dict[str, Any]:
    """Check ``doc`` against the document rules and return a fresh JSON-like copy of it.

    Tuples become lists; aliases (shared objects) become copies. Raises SpecError when ``doc``
    is not a mapping, is too deep, holds too many values, holds non-JSON values, or its compact
    JSON form exceeds MAX_BYTES.
    """
    if not isinstance(doc, Mapping):
        raise SpecError.single(DOCUMENT_LOC, f"the document must be a mapping, got {_kind(doc)}")
    errors = ErrorList()
    out = _Walker(errors).copy(doc, "", 1)
    errors.raise_if_any()
    size = len(json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError.single(
            DOCUMENT_LOC, f"the document is {size} bytes as JSON; the limit is {MAX_BYTES}"
        )
    assert isinstance(out, dict)
    return out


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
