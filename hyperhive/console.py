"""The rich consoles and the one-line error every ``hyperhive`` command prints (shared by all parts)."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

PIPE_WIDTH = 160
"""Table width when output is not a terminal (rich would use 80 and cut columns); COLUMNS overrides."""


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=PIPE_WIDTH if wide else None)


console = _console(stderr=False)
err_console = _console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)
