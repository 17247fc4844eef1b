"""The store is persistence, the engine is policy: importing a backend loads no hyperopt (nor the
engine or the pruner), and importing the policy modules loads no backend. Each check runs in a fresh
interpreter, so what another test imported cannot hide a dependency."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(*modules: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        # hyperhive's stand-in for hyperopt.atpe is no hyperopt code (hyperhive/_lazy_atpe.py)
        "real = [k for k, v in sys.modules.items() if type(v).__module__ != 'hyperhive._lazy_atpe']\n"
        "print(json.dumps(sorted(real)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "backend", ["hyperhive.store.base", "hyperhive.store.sqlite", "hyperhive.store.mongo"]
)
def test_a_store_backend_imports_no_hyperopt_and_no_policy(backend: str) -> None:
    loaded = loaded_after(backend, "hyperhive.store")
    assert backend in loaded
    assert not {m for m in loaded if m == "hyperopt" or m.startswith("hyperopt.")}
    assert not loaded & {"hyperhive.engine", "hyperhive.tpe", "hyperhive.pruning"}


def test_the_policy_modules_import_no_backend() -> None:
    loaded = loaded_after("hyperhive.engine", "hyperhive.pruning", "hyperhive.policy")
    assert "hyperopt" in loaded  # the engine is hyperopt's
    assert not {m for m in loaded if m.startswith("hyperhive.store")}
    assert not loaded & {"sqlite3", "pymongo"}
