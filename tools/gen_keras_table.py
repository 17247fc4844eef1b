"""Write search_spaces/keras_table.py: the signatures and names of the Keras objects a document may use.

The API validates documents without importing Keras (search_spaces is pure), so what Keras accepts is
read from Keras here, once, and committed as a plain module. Run it after upgrading Keras::

    PYTHONPATH=. python tools/gen_keras_table.py

tests/spaces/test_ss_keras_table.py regenerates the table in memory and fails when it differs from the
committed one.

For each allow-listed class (hyperhive.search_spaces.keras_names) the table holds every keyword argument its
constructor accepts, following ``**kwargs`` up the class hierarchy (minus the arguments a subclass
sets itself, such as ``rank``) to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``, ...
and the ``input_shape``/``input_dim`` it pops from ``**kwargs``) or the optimizers' base class; the
arguments without a default are listed as required. Each argument gets a kind, read from its name
(``activation``, ``*_initializer``, ``*_regularizer``, ``*_constraint``) or its default's type
(``bool``, ``int``: ints or lists of them, ``float``, ``str``), else ``any``. Activation, initializer,
regularizer, constraint and loss names are those ``keras.<module>.get(name)`` accepts.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "search_spaces" / "keras_table.py"
sys.path.insert(0, str(REPO))

from hyperhive.search_spaces.keras_names import LAYER_TYPES, LR_SCHEDULES, OPTIMIZER_TYPES  # noqa: E402

AUGMENTATION_LAYERS = ("RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast")
"""Built by the worker for ``training.augmentation``; listed so that a Keras change shows up."""
_NOT_NAMES = {"get", "serialize", "deserialize", "Initializer", "Regularizer", "Constraint", "Loss"}
_NOT_NAMES |= {n.lower() for n in _NOT_NAMES}  # the base classes' registry aliases


def _kind(name: str, default: Any) -> str:
    if name in ("activation", "recurrent_activation"):
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if name.endswith("_" + suffix):
            return suffix
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int) or (isinstance(default, tuple | list) and _all_ints(default)):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return "any"


def _all_ints(value: Any) -> bool:
    if isinstance(value, tuple | list):
        return bool(value) and all(_all_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _super_keywords(init: Any) -> set[str]:
    """The keyword names ``init`` passes to ``super().__init__`` (those a subclass sets itself)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError):
        return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "super"
        ):
            out.update(k.arg for k in node.keywords if k.arg)
    return out


def signature(cls: type, stop: type | None, popped_from: type | None) -> dict[str, Any]:
    """``{"arguments": {name: kind}, "required": [names]}`` for ``cls(**arguments)``."""
    arguments: dict[str, str] = {}
    required: list[str] = []
    excluded: set[str] = set()
    first = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters
        for name, p in params.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name in excluded:
                continue
            if name in arguments:
                continue
            arguments[name] = _kind(name, None if p.default is p.empty else p.default)
            if first and p.default is p.empty:
                required.append(name)
        if klass is popped_from:
            source = inspect.getsource(init)
            for name in re.findall(r"kwargs\.pop\(\s*[\"'](\w+)[\"']", source):
                arguments.setdefault(name, "any")
        if klass is stop or not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
        excluded |= _super_keywords(init) - set(arguments)
        first = False
    return {"arguments": dict(sorted(arguments.items())), "required": sorted(required)}


def _names(module: Any, accept: Any = None) -> list[str]:
    """The names ``module.get`` resolves (public names and the aliases of Keras's registry)."""
    candidates = {n for n in dir(module) if not n.startswith("_")}
    registry = importlib.import_module("keras.src." + module.__name__.rsplit(".", 1)[-1])
    candidates |= set(getattr(registry, "ALL_OBJECTS_DICT", {}))
    candidates -= _NOT_NAMES
    out = []
    for name in sorted(candidates):
        if accept is not None and not accept(name):
            continue
        try:
            if module.get(name) is not None:
                out.append(name)
        except Exception:  # anything get() refuses is not a name
            continue
    return out


def build_table() -> dict[str, Any]:
    """The table, read from the installed Keras."""
    import keras

    layer_base = keras.layers.Layer
    optimizer_base = next(k for k in keras.optimizers.Optimizer.__mro__ if k.__name__ == "BaseOptimizer")
    return {
        "KERAS_VERSION": keras.__version__,
        "LAYERS": {
            n: signature(getattr(keras.layers, n), layer_base, layer_base) for n in sorted(LAYER_TYPES)
        },
        "AUGMENTATION_LAYERS": {
            n: signature(getattr(keras.layers, n), layer_base, layer_base) for n in AUGMENTATION_LAYERS
        },
        "OPTIMIZERS": {
            n: signature(getattr(keras.optimizers, n), optimizer_base, None) for n in sorted(OPTIMIZER_TYPES)
        },
        "SCHEDULES": {
            n: signature(getattr(keras.optimizers.schedules, n), None, None) for n in sorted(LR_SCHEDULES)
        },
        "ACTIVATIONS": _names(keras.activations),
        "INITIALIZERS": _names(keras.initializers),
        "REGULARIZERS": _names(keras.regularizers),
        "CONSTRAINTS": _names(keras.constraints),
        # snake_case only: the worker picks integer or one-hot labels by the name (sparse_*)
        "LOSSES": _names(keras.losses, accept=lambda n: n == n.lower()),
        "FLIP_MODES": _flip_modes(keras),
    }


def _flip_modes(keras: Any) -> list[str]:
    """RandomFlip's modes (training.augmentation.flip), from the constants of its module."""
    module = sys.modules[keras.layers.RandomFlip.__module__]
    names = ("HORIZONTAL", "VERTICAL", "HORIZONTAL_AND_VERTICAL")
    return sorted(getattr(module, n) for n in names if isinstance(getattr(module, n, None), str))


HEADER = '''"""What Keras {version} accepts, read by tools/gen_keras_table.py. GENERATED, do not edit.

Regenerate after upgrading Keras (tests/spaces/test_ss_keras_table.py fails until then)::

    PYTHONPATH=. python tools/gen_keras_table.py

LAYERS, AUGMENTATION_LAYERS, OPTIMIZERS, SCHEDULES: ``{{class: {{"arguments": {{name: kind}}, "required":
[names]}}}}``; kinds: activation, initializer, regularizer, constraint (names below), bool, int (an int or
lists of ints), float, str, any. The other tables are the names ``keras.<module>.get`` accepts.
"""

from typing import Any
'''


def render(table: dict[str, Any]) -> str:
    """The module text (before ruff format)."""
    lines = [HEADER.format(version=table["KERAS_VERSION"]).rstrip("\n") + "\n"]
    for key, value in table.items():
        annotation = {str: "str", list: "list[str]"}.get(type(value), "dict[str, Any]")
        lines.append(f"{key}: {annotation} = {value!r}\n")
    return "\n".join(lines)


def main() -> None:
    TARGET.write_text(render(build_table()))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(TARGET)], check=True, cwd=REPO)
    print(f"wrote {TARGET.relative_to(REPO)}")


if __name__ == "__main__":
    main()
