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
        "hyperhive.demo_objectives",
        "mypkg",
        "other.mod",
    ]
    assert parse_objective_prefixes('["a.b"]') == ["hyperhive.demo_objectives", "a.b"]


def test_store_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """Regression: `hyperhive store export --all -o - | head` ended with a broken-pipe error."""
    import subprocess
    import sys

    from servicekit import EXAMPLES

    from hyperhive import search_spaces
    from hyperhive.store import SQLiteStore

    store = SQLiteStore(tmp_path / "x.db")
    spec = search_spaces.load((EXAMPLES / "lecture-cnn.yaml").read_text(), "yaml")
    for _ in range(200):  # far more than a pipe buffer holds
        store.create_search(spec, owner="a")
    store.close()
    args = ["store", "export", "--all", "-o", "-", "--store", f"sqlite:///{tmp_path / 'x.db'}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", *args],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100).startswith(b"{")
    proc.stdout.close()  # what `head -c 100` does
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert err == "" and proc.returncode != 0
