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

from hyperhive.search_spaces import keras_table
from hyperhive.search_spaces.keras_args import AUTO_FILLED_SCHEDULE_ARGUMENTS

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


# What the installed Keras says, read in one subprocess for both tests below (a Keras import takes ~8 s): the
# table tools/gen_keras_table.py builds, and each layer's, optimizer's and schedule's own argument defaults.
KERAS_FACTS_CODE = (
    "import inspect, json, runpy, sys, keras\n"
    "from hyperhive.search_spaces.keras_names import LAYER_TYPES, OPTIMIZER_TYPES, LR_SCHEDULES\n"
    "ns = runpy.run_path('tools/gen_keras_table.py', run_name='gen')\n"
    "def plain(v):\n"
    "    if isinstance(v, tuple | list):\n"
    "        return [plain(x) for x in v]\n"
    "    return v\n"
    "def defaults(cls):\n"
    "    out = {}\n"
    "    for name, p in inspect.signature(cls.__init__).parameters.items():\n"
    "        if p.default is not p.empty and name != 'self':\n"
    "            try:\n"
    "                out[name] = json.loads(json.dumps(plain(p.default)))\n"
    "            except TypeError:\n"
    "                pass\n"
    "    return out\n"
    "S = keras.optimizers.schedules\n"
    "res = {\n"
    "    'layers': {n: defaults(getattr(keras.layers, n)) for n in sorted(LAYER_TYPES)},\n"
    "    'optimizers': {n: defaults(getattr(keras.optimizers, n)) for n in sorted(OPTIMIZER_TYPES)},\n"
    "    'schedules': {n: defaults(getattr(S, n)) for n in sorted(LR_SCHEDULES)},\n"
    "}\n"
    "sys.stdout.write('FACTS' + json.dumps({'table': ns['build_table'](), 'defaults': res}))\n"
)


@pytest.fixture(scope="module")
def keras_facts() -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-c", KERAS_FACTS_CODE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("FACTS", 1)[1])  # type: ignore[no-any-return]


@pytest.mark.slow  # imports Keras (in a subprocess)
@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_the_table_matches_the_installed_keras(keras_facts: dict[str, Any]) -> None:
    fresh = keras_facts["table"]
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


PLACEHOLDERS = {
    "units": 4,
    "filters": 4,
    "kernel_size": 3,
    "pool_size": 2,
    "rate": 0.1,
    "stddev": 0.1,
    "activation": "relu",
    "target_shape": [4],
    "initial_learning_rate": 0.1,
    "decay_rate": 0.5,
    "boundaries": [10],
    "values": [0.1, 0.01],
}
"""Values for required arguments, so that each class can be written with Keras's own defaults."""


@pytest.mark.slow  # imports Keras (in a subprocess)
@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_keras_defaults_pass_the_checks(keras_facts: dict[str, Any]) -> None:
    """Every layer, optimizer and schedule written with Keras's own default for each argument validates:
    the kinds read from the signatures refuse nothing Keras itself would use."""
    found = keras_facts["defaults"]

    def with_required(table: dict[str, Any], name: str, given: dict[str, Any]) -> dict[str, Any]:
        required = [k for k in table[name]["required"] if k not in AUTO_FILLED_SCHEDULE_ARGUMENTS]
        return {**{k: PLACEHOLDERS[k] for k in required}, **given}

    layers = [
        {"type": name, **with_required(keras_table.LAYERS, name, args)}
        for name, args in found["layers"].items()
    ]
    optimizers = [
        {"type": name, **{k: v for k, v in args.items() if v is not None}}
        for name, args in found["optimizers"].items()
    ]
    schedules = [
        {"type": name, **with_required(keras_table.SCHEDULES, name, args)}
        for name, args in found["schedules"].items()
    ]
    errors: list[str] = []
    for item in layers:
        doc = {"name": "d", "max_trials": 1, "model": {"layers": [item]}}
        errors += _errors(doc)
    for opt in optimizers:
        errors += _errors(
            {
                "name": "d",
                "max_trials": 1,
                "model": {"layers": [{"type": "Flatten"}]},
                "training": {"optimizer": opt},
            }
        )
    for schedule in schedules:
        opt = {"type": "SGD", "learning_rate": schedule}
        errors += _errors(
            {
                "name": "d",
                "max_trials": 1,
                "model": {"layers": [{"type": "Flatten"}]},
                "training": {"optimizer": opt},
            }
        )
    assert not errors, "\n".join(errors)


def _errors(doc: dict[str, Any]) -> list[str]:
    from hyperhive.search_spaces import SpecError, validate

    try:
        validate(doc)
    except SpecError as exc:
        return [f"{doc['model'] if 'training' not in doc else doc['training']}: {e}" for e in exc.errors]
    return []
