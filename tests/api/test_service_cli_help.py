"""The ``hyperhive`` command's own manners, through real subprocesses: ``--version``, ``-h`` on every
command, no ``<bool>`` type next to on/off flags, and bad ``HYPERHIVE_*`` settings as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit import cli_env, hyperhive

from hyperhive import __version__

pytestmark = pytest.mark.slow


def test_version(tmp_path: Path) -> None:
    r = hyperhive("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == f"hyperhive {__version__}\n"


@pytest.mark.parametrize(
    "command", [[], ["submit"], ["up"], ["worker"], ["token", "create"], ["store", "export"], ["dataset"]]
)
def test_dash_h_is_help_everywhere_without_bool_noise(command: list[str], tmp_path: Path) -> None:
    r = hyperhive(*command, "-h", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Usage: hyperhive" in r.stdout and "--help" in r.stdout
    assert "<bool>" not in r.stdout


def test_a_flag_still_shows_the_type_of_an_option_that_takes_a_value(tmp_path: Path) -> None:
    r = hyperhive("submit", "-h", cwd=tmp_path, env=cli_env(COLUMNS="200"))
    line = next(x for x in r.stdout.splitlines() if "--interval" in x)
    assert "float" in line
    assert "<bool>" not in next(x for x in r.stdout.splitlines() if "--follow" in x)
