"""Helpers of the Hyperas tests (a module named ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"
README = (SCRIPTS / "readme_example.py.txt").read_text()
