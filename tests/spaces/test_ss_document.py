"""parse_text: formats, syntax errors, YAML quirks and the size limits."""

from __future__ import annotations

import json

import pytest

from hyperhive.search_spaces import MAX_BYTES, MAX_DEPTH, MAX_NODES, SpecError, parse_text
from hyperhive.search_spaces.document import normalize_document


def error_text(text: str | bytes, fmt: str | None = None) -> str:
    with pytest.raises(SpecError) as info:
        parse_text(text, fmt)
    return str(info.value)


def test_yaml_and_json_give_the_same_document() -> None:
    yaml_text = "name: a\nmax_trials: 3\nparams:\n  x: {uniform: [0, 1]}\n"
    json_text = json.dumps({"name": "a", "max_trials": 3, "params": {"x": {"uniform": [0, 1]}}})
    expected = {"name": "a", "max_trials": 3, "params": {"x": {"uniform": [0, 1]}}}
    assert parse_text(yaml_text) == expected
    assert parse_text(yaml_text, "yaml") == expected
    assert parse_text(json_text) == expected
    assert parse_text(json_text, "json") == expected
    assert parse_text(json_text.encode(), "application/json; charset=utf-8") == expected
    for content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        assert parse_text(yaml_text.encode(), content_type) == expected


def test_unknown_format_is_a_spec_error() -> None:
    assert "unsupported format" in error_text("a: 1", "text/csv")


def test_yaml_reads_exponent_floats_and_keeps_dates_as_strings() -> None:
    doc = parse_text("lr: [1e-4, 1E+2, -2.5e3, 1.0e-1]\nwhen: 2024-01-02\nversion: 1.10\n")
    assert doc["lr"] == [1e-4, 100.0, -2500.0, 0.1]
    assert all(isinstance(v, float) for v in doc["lr"])
    assert doc["when"] == "2024-01-02"


def test_utf8_bom_is_accepted() -> None:
    assert parse_text("\ufeffa: 1".encode()) == {"a": 1}
    assert parse_text("\ufeffa: 1") == {"a": 1}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1, 2\nb: 3\n", "line 2"),
        ("a: 1\n  b: 2\n", "line 2"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("- 1\n- 2\n", "must be a mapping, got a list"),
        ("just text", "must be a mapping, got a string"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("a: !!python/object:os.system {}\n", "YAML"),
        ("a: !!binary aGVsbG8=\n", "not allowed"),
        ("a: !!set {x, y}\n", "not allowed"),
        ("a: .nan\n", "finite"),
        ("a: -.inf\n", "finite"),
        ("1: x\n", "keys must be strings"),
        ("? [1, 2]\n: x\n", "YAML"),
        ("a: 1\n---\nb: 2\n", "YAML"),
    ],
)
def test_bad_text_is_a_spec_error(text: str, fragment: str) -> None:
    assert fragment in error_text(text)


def test_json_syntax_error_has_a_line() -> None:
    assert "line 2" in error_text('{"a": 1,\n "b": }', "json")


def test_json_nan_is_refused_at_its_path() -> None:
    with pytest.raises(SpecError) as info:
        parse_text('{"a": {"b": [1, NaN]}}', "json")
    assert [(e.loc, e.msg) for e in info.value.errors] == [("a.b[1]", "numbers must be finite, got nan")]


def test_bytes_must_be_utf8() -> None:
    assert "UTF-8" in error_text(b"a: \xff\xfe\n")


def test_too_big() -> None:
    text = "a: '" + "x" * MAX_BYTES + "'\n"
    assert "limit" in error_text(text)
    assert "limit" in error_text(text.encode())


def test_too_deep() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse_text('{"a": ' + ok + "}")
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert "deeper" in error_text('{"a": ' + deep + "}")
    text = error_text("a: " + "[" * 5000 + "]" * 5000)
    assert "deeper" in text or "nesting depth" in text  # libyaml stops at its own limit
    assert "deeper" in error_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "json")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    text = "\n".join(lines) + "\n"
    assert str(MAX_NODES) in error_text(text)


def test_recursive_alias_is_refused() -> None:
    assert "deeper" in error_text("a: &x [*x]\n")


def test_small_aliases_expand_to_copies() -> None:
    doc = parse_text("base: &b {type: Dense, units: 8}\nlayers: [*b, *b]\n")
    assert doc["layers"] == [{"type": "Dense", "units": 8}] * 2
    assert doc["layers"][0] is not doc["layers"][1]


def test_normalize_document_copies_tuples_and_checks_json_size() -> None:
    doc = normalize_document({"a": (1, 2), "b": {"c": None}})
    assert doc == {"a": [1, 2], "b": {"c": None}}
    with pytest.raises(SpecError, match="as JSON"):
        normalize_document({"a": ["x" * 1000] * (MAX_BYTES // 1000 + 1)})
    with pytest.raises(SpecError, match="type object"):
        normalize_document({"a": object()})
