"""One namespace: installing Hyperhive puts one top-level package, ``hyperhive``, into site-packages. The
repository keeps its folders search_spaces/, workers/ and service/; pyproject maps them to
hyperhive.search_spaces, hyperhive.workers and hyperhive.service (a user's own ``workers.py`` once replaced
ours and every worker exited)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"hyperhive": "hyperhive", "search_spaces": "hyperhive.search_spaces",
           "workers": "hyperhive.workers", "service": "hyperhive.service"}  # fmt: skip


def source_packages() -> set[str]:
    """Every package in the four folders, by the name it is installed under."""
    found = set()
    for folder, name in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            if "hyperas_shim" not in rel:  # package data: put on a script trial's path, never imported
                found.add(".".join((name, *rel)))
    return found


def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == source_packages()
    assert config["package-dir"] == {name: folder for folder, name in FOLDERS.items()}


@pytest.mark.slow
def test_pip_install_leaves_only_hyperhive_top_level(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build_existed = (REPO / "build").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    if not build_existed:  # setuptools builds in the source tree
        shutil.rmtree(REPO / "build", ignore_errors=True)
    top = {p.name for p in target.iterdir() if not p.name.endswith((".dist-info", ".egg-info"))}
    top.discard("bin")
    assert top == {"hyperhive"}
    installed = {
        p.relative_to(target) for p in (target / "hyperhive").rglob("*") if "__pycache__" not in p.parts
    }
    for folder, name in FOLDERS.items():  # every source file and every data file made it
        base = Path(*name.split("."))
        for src in (REPO / folder).rglob("*"):
            shipped = src.suffix in (".py", ".html", ".js", ".css", ".yaml", ".json")
            if src.is_file() and "__pycache__" not in src.parts and shipped:
                assert base / src.relative_to(REPO / folder) in installed, src
    # the installed copy runs from a folder that holds a user's workers.py, without the checkout
    (tmp_path / "workers.py").write_text("raise SystemExit('the user module was imported')\n")
    code = (
        "import hyperhive.workers.cli, hyperhive.service.app, hyperhive.search_spaces as s, hyperhive.cli\n"
        f"assert s.__file__.startswith({str(target)!r}), s.__file__\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
