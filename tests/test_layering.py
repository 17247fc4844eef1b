"""The dependency direction: hyperhive.search_spaces <- hyperhive (store, engine) <- hyperhive.service and
hyperhive.workers. Workers never import the web app; the web app never imports Keras; the language imports
neither. Every import names the one namespace: the repository's folders search_spaces/, workers/ and
service/ are installed as hyperhive.search_spaces, hyperhive.workers and hyperhive.service (pyproject's
package-dir), so ``import workers`` would load a second copy (or a user's own ``workers.py``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARTS = ("search_spaces", "workers", "service")  # repository folders installed as hyperhive.<part>
CORE = "hyperhive"  # the hyperhive/ folder: store, engine, settings, client, CLI entry point
THIRD_PARTY = {"keras", "tensorflow", "fastapi", "pymongo", "uvicorn"}
FORBIDDEN = {
    "search_spaces": {CORE, "service", "workers", "keras", "tensorflow", "fastapi", "pymongo"},
    CORE: {"service", "workers", "keras", "tensorflow", "fastapi"},
    "workers": {"service", "fastapi", "uvicorn"},
    "service": {"workers", "keras", "tensorflow"},
}
# The CLI entry point registers every part's commands (lazily, at start-up): its one allowed exception.
ALLOWED = {REPO / "hyperhive" / "cli.py"}


def layer_of(module: str) -> str | None:
    """The layer an absolute import names: a part, the core, a third-party root of interest, or None."""
    parts = module.split(".")
    if parts[0] == "hyperhive":
        return parts[1] if len(parts) > 1 and parts[1] in PARTS else CORE
    return parts[0] if parts[0] in THIRD_PARTY else None


def imports_of(path: Path) -> list[str]:
    """Every absolute module an import statement names (``from hyperhive import workers`` names
    ``hyperhive.workers``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            if node.module == "hyperhive":
                found.extend(f"hyperhive.{a.name}" for a in node.names if a.name in PARTS)
    return found


def sources(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_against_the_dependency_direction(layer: str) -> None:
    bad = []
    for path in sources(layer):
        if path in ALLOWED:
            continue
        wrong = {layer_of(m) for m in imports_of(path)} & FORBIDDEN[layer]
        if wrong:
            bad.append(f"{path.relative_to(REPO)} imports {sorted(wrong)}")
    assert not bad, "\n".join(bad)


def test_every_import_uses_the_one_namespace() -> None:
    """No ``import workers`` / ``from service.x import y`` anywhere: in the installed package those names
    do not exist (a user's own module of that name would be loaded instead)."""
    bad = []
    for folder in (*PARTS, CORE, "tests", "benchmarks", "tools"):
        for path in sources(folder):
            top = {m.split(".")[0] for m in imports_of(path)} & set(PARTS)
            if top:
                bad.append(f"{path.relative_to(REPO)} imports {sorted(top)} outside hyperhive.")
    assert not bad, "\n".join(bad)


def test_a_users_workers_module_does_not_shadow_ours(tmp_path: Path) -> None:
    """Regression: a ``workers.py`` (or ``service.py``) in the current folder replaced our package and every
    worker exited. Ours is ``hyperhive.workers`` now, whatever the current folder holds."""
    for name in PARTS:
        (tmp_path / f"{name}.py").write_text("raise SystemExit('the user module was imported')\n")
    code = "import hyperhive.cli, hyperhive.workers.cli, hyperhive.service.cli, hyperhive.search_spaces\n"
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", "worker", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "--allow-objective" in r.stdout, r.stdout + r.stderr


def test_the_api_app_runs_without_keras(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from hyperhive.service.app import create_app\n"
        "from hyperhive.settings import Settings\n"
        f"app = create_app(Settings(store='sqlite:///{tmp_path}/x.db', home='{tmp_path}'))\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'hyperhive.workers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_a_function_worker_starts_without_keras_or_the_web_app() -> None:
    code = (
        "import sys\n"
        "import hyperhive.workers.daemon, hyperhive.workers.execution, hyperhive.workers.cli\n"
        "heavy = ('keras', 'tensorflow', 'fastapi', 'hyperhive.service')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
