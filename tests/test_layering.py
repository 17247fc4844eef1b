"""The dependency direction: search_spaces <- hyperhive (store, engine) <- service and workers.
Workers never import the web app; the web app never imports Keras; the language imports neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "search_spaces": {"hyperhive", "service", "workers", "keras", "tensorflow", "fastapi", "pymongo"},
    "hyperhive": {"service", "workers", "keras", "tensorflow", "fastapi"},
    "workers": {"service", "fastapi", "uvicorn"},
    "service": {"workers", "keras", "tensorflow"},
}
# The CLI entry point registers every part's commands (lazily, at start-up): its one allowed exception.
ALLOWED = {REPO / "hyperhive" / "cli.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_dependency_direction(package: str) -> None:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        if path in ALLOWED:
            continue
        wrong = imported_roots(path) & FORBIDDEN[package]
        if wrong:
            bad.append(f"{path.relative_to(REPO)} imports {sorted(wrong)}")
    assert not bad, "\n".join(bad)


def test_the_api_app_runs_without_keras(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from service.app import create_app\n"
        "from hyperhive.settings import Settings\n"
        f"app = create_app(Settings(store='sqlite:///{tmp_path}/x.db', home='{tmp_path}'))\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'workers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_a_function_worker_starts_without_keras_or_the_web_app() -> None:
    code = (
        "import sys\n"
        "import workers.daemon, workers.execution, workers.cli\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'fastapi', 'service') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
