"""CLI rough edges found by using the product: help texts keep their defaults."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from hyperhive.cli import app


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (["up"], "default sqlite:///.hyperhive/hyperhive.db"),
        (["up"], "default 8000, or a free one if taken"),
        (["serve"], "env HYPERHIVE_PORT; default 8000"),
        (["run"], "default: the lecture CNN example"),
        (["status"], "env HYPERHIVE_URL"),
    ],
)
def test_help_shows_defaults(command: list[str], text: str) -> None:
    """Regression: rich read '[env ...; default ...]' as markup and printed nothing of it."""
    r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert r.exit_code == 0
    assert text in re.sub(r"\s+", " ", r.output)
