"""Function objectives (``objective.function: "package.module:function"``), run only from allowed modules.

A reference that cannot be resolved (malformed, refused, its module not importable, no such callable)
is an error of the search document: :func:`resolve` raises it before the function is called, and the
worker fails the whole search with it. What the function itself raises fails only its trial.

A worker runs a function only when its module is one of the allowed prefixes or inside one
(``hyperhive.demo_objectives`` allows ``hyperhive.demo_objectives`` and ``hyperhive.demo_objectives.x``,
not ``hyperhive.demo_objectives_evil``). The prefixes are ``Settings.allow_objective`` plus the worker's
``--allow-objective`` flags. A refused function fails its trial with :class:`ObjectiveRefused`.

The reference names ONE plain function (see :func:`resolve`): the part after the colon is a single name,
the object must be a Python function and its own ``__module__`` must be allowed too. Anyone who may
submit a search may call any such public function of an allowed module with a mapping they choose, so
allow only modules written to be objectives (docs/security.md).

The function receives the configuration's ``params`` mapping and returns a number (the objective
metric's value) or a mapping of metrics (numbers, or JSON-serialisable values for extras). The module is
imported with :func:`importlib.import_module` and the name looked up in its namespace: no ``eval``.
Nothing here imports Keras.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import re
import types
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from hyperhive.errors import HyperhiveError
from hyperhive.settings import LAUNCHER_ENV


class ObjectiveError(HyperhiveError):
    """A function objective that cannot be run or returned something unusable."""


class ObjectiveRefused(ObjectiveError):
    """The function's module is not under an allowed prefix."""


REFERENCE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*")
"""``package.module:function``: a dotted module path, a colon and ONE name (no attribute chain); no
part starts with ``_`` (no private names, no ``pkg.__main__`` whose import would run a program).
The same rule as ``search_spaces`` applies at submit; the worker checks again (stored documents are
not trusted)."""


def split_reference(reference: str) -> tuple[str, str]:
    """``"pkg.mod:name"`` -> ``("pkg.mod", "name")``; :class:`ObjectiveError` for anything else."""
    if not isinstance(reference, str) or not REFERENCE_PATTERN.fullmatch(reference):
        shown = reference[:120] if isinstance(reference, str) else type(reference).__name__
        raise ObjectiveError(
            f"objective function {shown!r} must look like 'package.module:function' "
            "(one function name after the colon, no attribute chain, no names starting with '_')"
        )
    module, _, name = reference.partition(":")
    return module, name


def is_allowed(module: str, prefixes: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or a submodule of one (dotted boundaries)."""
    if not isinstance(module, str) or not module:
        return False
    for prefix in prefixes:
        prefix = prefix.strip().rstrip(".")
        if prefix and (module == prefix or module.startswith(prefix + ".")):
            return True
    return False


def allow_hint(module: str) -> str:
    """How to allow ``module``, with the flag of the command that started this worker."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher in ("up", "run"):
        return f"to allow it, start `hyperhive {launcher}` again with --allow-objective {module}"
    return f"to allow it, start the worker with --allow-objective {module} (or HYPERHIVE_ALLOW_OBJECTIVE)"


def resolve(reference: str, allowed: Iterable[str]) -> types.FunctionType:
    """The plain Python function a reference names.

    Refused (:class:`ObjectiveRefused`, whose message never lists the allow-list) unless the module
    named is under an allowed prefix -- checked before anything is imported -- and the object found
    is a plain function (:func:`inspect.isfunction`: not a class, builtin, method, module, partial or
    callable instance) whose own ``__module__`` is under an allowed prefix too, so a function an
    allowed module merely imports (``from subprocess import run``) is refused. The name is looked up
    in the module's own namespace (``vars(module)``): a module ``__getattr__`` hook is never called.
    """
    allowed = list(allowed)
    module_name, name = split_reference(reference)
    if not is_allowed(module_name, allowed):
        raise ObjectiveRefused(
            f"objective function {reference!r} refused: module {module_name!r} is not allowed on this "
            f"worker; {allow_hint(module_name)}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ObjectiveError(
            f"objective function {reference!r}: cannot import {module_name!r}: {exc}"
        ) from None
    if not isinstance(module, types.ModuleType):
        raise ObjectiveRefused(f"objective function {reference!r} refused: {module_name!r} is not a module")
    namespace = vars(module)
    if name not in namespace:
        raise ObjectiveError(f"objective function {reference!r}: {module_name} has no {name!r}")
    target = namespace[name]
    if not inspect.isfunction(target):
        raise ObjectiveRefused(
            f"objective function {reference!r} refused: {name!r} is a {type(target).__name__}, "
            "not a plain Python function"
        )
    defined_in = getattr(target, "__module__", None)
    if not isinstance(defined_in, str) or not is_allowed(defined_in, allowed):
        raise ObjectiveRefused(
            f"objective function {reference!r} refused: it is defined in module {defined_in!r}, which is "
            f"not allowed on this worker (imported names are not objectives); {allow_hint('PREFIX')}"
        )
    return target


def _plain(value: Any) -> Any:
    """numpy scalars and nested containers as plain JSON values."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Real):
        return float(value) if not isinstance(value, int) else int(value)
    if hasattr(value, "item") and callable(value.item):
        return _plain(value.item())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise ObjectiveError(
        f"the objective returned a value of type {type(value).__name__}, not a number or mapping"
    )


def run_function_objective(
    reference: str, params: Mapping[str, Any] | None, allowed: Iterable[str], objective_metric: str
) -> dict[str, Any]:
    """Call the function on ``params`` and return the trial's metrics (``{objective_metric: value}`` for
    a number). Raises :class:`ObjectiveRefused` / :class:`ObjectiveError`; whatever the function raises
    propagates."""
    return call_objective(resolve(reference, allowed), reference, params, objective_metric)


def call_objective(
    fn: Any, reference: str, params: Mapping[str, Any] | None, objective_metric: str
) -> dict[str, Any]:
    """Call a resolved objective on ``params`` and return the trial's metrics (see
    :func:`run_function_objective`)."""
    result = fn(dict(params or {}))
    if isinstance(result, Mapping):
        metrics = _plain(result)
    elif isinstance(result, Real) or (hasattr(result, "item") and not isinstance(result, str)):
        metrics = {objective_metric: _plain(result)}
    else:
        raise ObjectiveError(
            f"objective function {reference!r} returned {type(result).__name__}; return a number or a mapping"
        )
    value = metrics.get(objective_metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ObjectiveError(
            f"objective function {reference!r} returned no finite number for metric {objective_metric!r} "
            f"(got {value!r})"
        )
    return dict(metrics)
