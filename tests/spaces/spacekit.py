"""Small helpers shared by the search_spaces tests (imported as a sibling module)."""

from __future__ import annotations

from typing import Any

import pytest

from hyperhive.search_spaces import SearchSpec, SpecError, validate


def function_doc(params: Any, **extra: Any) -> dict[str, Any]:
    """A minimal valid function-search document around ``params``."""
    doc: dict[str, Any] = {
        "name": "t",
        "max_trials": 10,
        "objective": {"function": "hyperhive.demo_objectives:quadratic"},
        "params": params,
    }
    doc.update(extra)
    return doc


def model_doc(layers: Any = None, **extra: Any) -> dict[str, Any]:
    """A minimal valid Keras-search document."""
    doc: dict[str, Any] = {
        "name": "m",
        "max_trials": 10,
        "dataset": {"name": "digits"},
        "model": {"layers": layers if layers is not None else [{"type": "Flatten"}]},
    }
    doc.update(extra)
    return doc


def spec_of(params: Any) -> SearchSpec:
    return validate(function_doc(params))


def errors_of(doc: Any) -> dict[str, str]:
    """{loc: msgs} of the SpecError that validating ``doc`` raises (fails if it does not); several
    messages at one loc are joined with " | "."""
    with pytest.raises(SpecError) as info:
        validate(doc)
    out: dict[str, str] = {}
    for e in info.value.errors:
        out[e.loc] = f"{out[e.loc]} | {e.msg}" if e.loc in out else e.msg
    return out


def assert_error(doc: Any, loc: str, fragment: str) -> None:
    errors = errors_of(doc)
    assert loc in errors, f"no error at {loc!r}; got {errors}"
    assert fragment in errors[loc], f"{loc}: {errors[loc]!r} lacks {fragment!r}"
