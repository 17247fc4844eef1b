"""The ``hyperhive`` command's own manners, through real subprocesses: ``--version``, ``-h`` on every
command, no ``<bool>`` type next to on/off flags, and bad ``HYPERHIVE_*`` settings as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from servicekit import cli_env, free_port, hyperhive

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


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["token", "list"],
        ["worker", "--burst"],
        ["store", "export", "--all", "-o", "-"],
        ["serve"],
    ],
)
def test_a_bad_setting_is_one_line_for_every_command(command: list[str], tmp_path: Path) -> None:
    r = hyperhive(*command, cwd=tmp_path, env=cli_env(HYPERHIVE_ALLOW_OBJECTIVE="my-pkg"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "HYPERHIVE_ALLOW_OBJECTIVE" in r.stderr and "'my-pkg'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_allow_objective_from_the_environment_is_comma_separated_and_adds_to_the_default(
    tmp_path: Path,
) -> None:
    """Regression: HYPERHIVE_ALLOW_OBJECTIVE=mypkg broke every command with a settings traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    env = cli_env(HYPERHIVE_ALLOW_OBJECTIVE="mypkg, other.mod", HYPERHIVE_URL=url)
    r = hyperhive("status", cwd=tmp_path, env=env)
    assert r.returncode == 1 and f"cannot connect to {url}" in r.stderr, r.stderr  # got past the settings
    from hyperhive.settings import Settings, parse_objective_prefixes

    assert Settings(allow_objective="mypkg, other.mod").allow_objective == [  # type: ignore[arg-type]
        "search_spaces.objectives",
        "mypkg",
        "other.mod",
    ]
    assert parse_objective_prefixes('["a.b"]') == ["search_spaces.objectives", "a.b"]
