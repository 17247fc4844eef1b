"""search_spaces/keras_table.py matches the installed Keras: a Keras upgrade that changes a signature or a
name fails here until the table is regenerated (the API checks documents against the table)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from search_spaces import keras_table

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "run `PYTHONPATH=. python tools/gen_keras_table.py` and commit search_spaces/keras_table.py"


def _committed() -> dict[str, Any]:
    return {k: v for k, v in vars(keras_table).items() if k.isupper()}


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            path = f"{where}.{key}" if where else key
            if key not in new:
                out.append(f"{path}: gone from Keras")
            elif key not in old:
                out.append(f"{path}: new in Keras ({new[key]!r})")
            else:
                out.extend(_differences(old[key], new[key], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and old != new:
        return [f"{where}: removed {sorted(set(old) - set(new))}, added {sorted(set(new) - set(old))}"]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


@pytest.mark.slow  # imports Keras (in a subprocess)
@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_the_table_matches_the_installed_keras() -> None:
    code = (
        "import json, runpy, sys\n"
        "ns = runpy.run_path('tools/gen_keras_table.py', run_name='gen')\n"
        "sys.stdout.write('TABLE' + json.dumps(ns['build_table']()))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    fresh = json.loads(r.stdout.split("TABLE", 1)[1])
    committed = _committed()
    diffs = _differences(committed, fresh)
    assert not diffs, (
        f"search_spaces/keras_table.py was made from Keras {committed['KERAS_VERSION']} and differs from "
        f"the installed Keras {fresh['KERAS_VERSION']}; {REGENERATE}:\n" + "\n".join(diffs[:40])
    )


def test_differences_are_named() -> None:
    old = {"KERAS_VERSION": "3.0", "LAYERS": {"Dense": {"arguments": {"units": "any"}}}, "LOSSES": ["a"]}
    new = {"KERAS_VERSION": "3.1", "LAYERS": {"Dense": {"arguments": {"units": "int"}}}, "LOSSES": ["b"]}
    assert _differences(old, new) == [
        "KERAS_VERSION: '3.0' -> '3.1'",
        "LAYERS.Dense.arguments.units: 'any' -> 'int'",
        "LOSSES: removed ['a'], added ['b']",
    ]
