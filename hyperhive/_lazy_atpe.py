"""``hyperopt.atpe`` imported only when something uses it.

``import hyperopt`` (any of its modules: the package's ``__init__`` runs first) imports every built-in
algorithm, and ``hyperopt.atpe`` alone imports ``scipy.stats``: about a third of a ``hyperhive`` process's
start-up (each CLI command that reads a search document, every worker, the API). Hyperhive offers TPE,
random and anneal, never ATPE. :func:`install`, called when the ``hyperhive`` package is imported (before
any hyperopt import of ours), puts a stand-in for ``hyperopt.atpe`` in ``sys.modules``; hyperopt's
``from . import atpe`` binds it, and the first attribute anyone reads from it imports the real module
(which then replaces it in ``sys.modules`` and in the ``hyperopt`` package), so code that does use ATPE
works as before, a moment later.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_NAME = "hyperopt.atpe"


class _Deferred(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # introspection (copy, pickle, help) does not load scipy
        if sys.modules.get(_NAME) is self:
            del sys.modules[_NAME]
        real = importlib.import_module(_NAME)
        return getattr(real, name)


def install() -> None:
    """The stand-in, unless hyperopt is imported already (then ``hyperopt.atpe`` is the real one)."""
    if "hyperopt" not in sys.modules and _NAME not in sys.modules:
        sys.modules[_NAME] = _Deferred(_NAME)
