"""ruff and mypy stay clean (their settings are in pyproject.toml); CI runs them with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the dev extra)")
    return found


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(args: list[str]) -> None:
    r = subprocess.run([tool("ruff"), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def linked_tree(root: Path) -> Path:
    """The installed layout (``hyperhive`` with ``search_spaces``, ``workers`` and ``service`` inside it) as
    symbolic links into the repository: mypy cannot follow setuptools' package-dir mapping."""
    pkg = root / "hyperhive"
    pkg.mkdir(parents=True)
    for entry in (REPO / "hyperhive").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for part in ("search_spaces", "workers", "service"):
        (pkg / part).symlink_to(REPO / part)
    return root


def test_mypy(tmp_path: Path) -> None:
    tree = linked_tree(tmp_path / "tree")
    r = subprocess.run(
        [tool("mypy"), "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(tmp_path / "mypy")],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    checked = int(r.stdout.split("in ")[-1].split()[0]) if "Success" in r.stdout else 0
    # every source file of the four folders was checked (a missing mapping would silently skip a part)
    expected = sum(
        1 for d in ("hyperhive", "search_spaces", "workers", "service") for _ in (REPO / d).rglob("*.py")
    )
    assert checked >= expected, r.stdout
