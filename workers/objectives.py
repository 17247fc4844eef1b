"""Function objectives (``objective.function: "package.module:callable"``), run only from allowed modules.

A worker runs a function only when its module is one of the allowed prefixes or inside one
(``search_spaces.objectives`` allows ``search_spaces.objectives`` and ``search_spaces.objectives.x``,
not ``search_spaces.objectives_evil``). The prefixes are ``Settings.allow_objective`` plus the worker's
``--allow-objective`` flags. A refused function fails its trial with :class:`ObjectiveRefused`.

The callable receives the configuration's ``params`` mapping and returns a number (the objective
metric's value) or a mapping of metrics (numbers, or JSON-serialisable values for extras). The module is
imported with :func:`importlib.import_module` and the callable found by attribute lookup: no ``eval``.
Nothing here imports Keras.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from hyperhive.errors import HyperhiveError
from hyperhive.settings import LAUNCHER_ENV


class ObjectiveError(HyperhiveError):
    """A function objective that cannot be run or returned something unusable."""


class ObjectiveRefused(ObjectiveError):
    """The function's module is not under an allowed prefix."""


def split_reference(reference: str) -> tuple[str, str]:
    """``"pkg.mod:attr.path"`` -> ``("pkg.mod", "attr.path")``."""
    module, sep, attr = reference.partition(":")
    if not sep or not module or not attr:
        raise ObjectiveError(f"objective function {reference!r} must look like 'package.module:callable'")
    return module, attr


def is_allowed(module: str, prefixes: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or a submodule of one (dotted boundaries)."""
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


def resolve(reference: str, allowed: Iterable[str]) -> Any:
    """The callable a reference names, once its module passed the allow-list."""
    allowed = list(allowed)
    module_name, attr = split_reference(reference)
    if not is_allowed(module_name, allowed):
        raise ObjectiveRefused(
            f"objective function {reference!r} refused: module {module_name!r} is not under an allowed "
            "prefix "
            f"({', '.join(allowed) or 'none'}); {allow_hint(module_name)}"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ObjectiveError(
            f"objective function {reference!r}: cannot import {module_name!r}: {exc}"
        ) from None
    for part in attr.split("."):
        if part.startswith("_"):
            raise ObjectiveError(f"objective function {reference!r}: private names are not allowed")
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ObjectiveError(f"objective function {reference!r}: {module_name} has no {attr!r}") from None
    if not callable(target):
        raise ObjectiveError(f"objective function {reference!r} is not callable")
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
    fn = resolve(reference, allowed)
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
