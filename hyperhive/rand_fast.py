"""hyperopt's random search (``hyperopt.rand.suggest``) without its per-call graph interpreter.

``rand.suggest`` evaluates the domain's sampling graph (``Domain.s_idxs_vals``) with ``pyll.rec_eval``
on every call, then wraps the draw in a hyperopt trial document. :class:`RandomSampler` compiles that
graph once into a :class:`~hyperhive.pyll_program.Program` (the node functions called in
``rec_eval``'s order, on the same ``numpy`` generator ``default_rng(seed)``), so every draw is the one
``rand.suggest`` makes: the suggestions are the same, value for value, for a given seed
(``tests/engine/test_rand_fast.py`` checks it against ``rand.suggest`` on every kind of parameter and
on nested choices). A graph the program cannot replay (``switch`` nodes) is evaluated by
``rec_eval``, as in ``rand.suggest``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt.base import Domain

from hyperhive.pyll_program import Program


class RandomSampler:
    """``rand.suggest`` for one domain, compiled once (see the module docstring)."""

    def __init__(self, domain: Domain) -> None:
        self._new_ids = domain.s_new_ids
        self._rng = domain.s_rng
        self.program = Program(domain.s_idxs_vals, [domain.s_new_ids, domain.s_rng])

    def vals(self, new_id: int, seed: int) -> dict[str, list[Any]]:
        """hyperopt's ``misc.vals`` of the trial that ``rand.suggest([new_id], domain, trials, seed)``
        suggests: ``{label: [value] | []}`` (its ``miscs_update_idxs_vals``: the last value drawn for
        ``new_id``, none for a parameter the trial does not reach)."""
        rng = np.random.default_rng(seed)
        idxs, vals = self.program.run({self._new_ids: [new_id], self._rng: rng})
        out: dict[str, list[Any]] = {}
        for key in idxs:
            drawn = [v for tid, v in zip(idxs[key], vals[key], strict=True) if tid == new_id]
            out[key] = drawn[-1:]
        return out
