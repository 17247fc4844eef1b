"""hyperopt's ATPE (and the scipy.stats it imports) is loaded only when something uses it: a hyperhive
process that imports the engine and the search-space language starts without it, and code that does use
``hyperopt.atpe`` gets the real module."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_engine_and_the_language_start_without_scipy_stats() -> None:
    out = _run(
        """
        import sys
        import hyperhive.engine, hyperhive.search_spaces, hyperhive.store
        from hyperhive.search_spaces import validate
        validate({"name": "s", "algorithm": "tpe", "max_trials": 3,
                  "objective": {"function": "hyperhive.demo_objectives:quadratic"},
                  "params": {"x": {"uniform": [0, 1]}}})
        print("scipy.stats" in sys.modules, "hyperopt.tpe" in sys.modules)
        """
    )
    assert out == "False True"


def test_code_that_uses_atpe_gets_the_real_module() -> None:
    out = _run(
        """
        import sys
        import hyperhive.engine
        import hyperopt
        from hyperopt import atpe
        from hyperopt.atpe import ATPEOptimizer
        real = sys.modules["hyperopt.atpe"]
        print(callable(atpe.suggest), ATPEOptimizer.__module__, hyperopt.atpe is real,
              "scipy.stats" in sys.modules)
        """
    )
    assert out == "True hyperopt.atpe True True"
