"""TPE for parallel workers and small budgets: a suggestion never nearly duplicates a trial that is
still in flight, nor exactly repeats a finished one.

hyperopt's TPE handles trials in flight (``running``, or ``queued`` with their values) as a constant
liar: they count as observations with an infinite loss, i.e. in the "above" (bad) group, which is what
Optuna's ``constant_liar`` does too (TPE's split is by rank, so any lie worse than the good group's
threshold is the same lie). That lie is weak: one more "bad" observation among dozens barely changes
the above density, while the candidate that maximises EI is, for discrete parameters, almost always
the same value whatever the seed. So two workers that ask with the same history and different seeds
get the same configuration: measured on ``benchmarks/search_quality.py``'s table of real trainings,
14 % of the claims of 2 workers (19 % with 4) got a configuration that was still running, and the
search paid twice for the same answer.

:class:`ParallelTPE` wraps :class:`~hyperhive.tpe_fast.FastTPE` and keeps its suggestion unless it is
a near-duplicate (:func:`near_duplicate`) of a trial in flight, or (``avoid_finished``, the default)
the very configuration of a finished trial: in a space of discrete parameters TPE re-suggests its best
configuration again and again, and an objective pays again for an answer it has (on the table, TPE's
first 50 trials held 33-36 distinct configurations, random search's 45). Then it draws again, up to
:data:`REDRAWS` times, a configuration from TPE's model of the good configurations (one EI candidate:
a sample of the "below" density, so still where good results were seen, seeded from the trial's seed),
and after that, as many times, from the prior (random search). If every draw is a duplicate (the
space has few points left) the first draw that is not in flight stands, else TPE's own suggestion.
Whenever TPE's own suggestion is neither, it is exactly ``FastTPE``'s, i.e. hyperopt's ``tpe.suggest``
(with only continuous parameters an exact repeat does not happen, so with no trial in flight nothing
changes there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hyperopt import rand
from hyperopt.base import JOB_STATE_NEW, JOB_STATE_RUNNING, Domain, Trials

from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_history import ExactKey, History, Vals, exact_key

NEAR = 0.01
"""Two values of a continuous parameter are near when they differ by at most this fraction of the
parameter's prior width (``high - low``, on the log scale for log distributions; ``4 sigma`` for normal
ones). Discrete ones (choice, randint) are near only when equal."""
REDRAWS = 8
"""Draws from TPE's good density, then as many from the prior, before the first suggestion stands."""

_LINEAR_RANGE = ("uniform", "quniform")
_LOG_RANGE = ("loguniform", "qloguniform")
_LINEAR_SIGMA = ("normal", "qnormal")
_LOG_SIGMA = ("lognormal", "qlognormal")

Scale = tuple[bool, float]  # (compare on the log scale, width)


def _literal(node: Any) -> float | None:
    if node.name != "literal" or isinstance(node.obj, bool) or not isinstance(node.obj, int | float):
        return None
    return float(node.obj)


def parameter_scales(domain: Domain) -> dict[str, Scale]:
    """Per continuous parameter of ``domain``, how to compare two of its values; parameters absent from
    the result (choices, randint, distributions whose arguments are expressions) compare by equality."""
    scales: dict[str, Scale] = {}
    for label, node in domain.params.items():
        args = [_literal(arg) for arg in node.pos_args[:2]]
        if len(args) < 2:
            continue
        a, b = args
        if a is None or b is None:
            continue
        if node.name in _LINEAR_RANGE or node.name in _LOG_RANGE:
            width = b - a
        elif node.name in _LINEAR_SIGMA or node.name in _LOG_SIGMA:
            width = 4 * b
        else:
            continue
        if width > 0 and math.isfinite(width):
            scales[label] = (node.name in _LOG_RANGE or node.name in _LOG_SIGMA, width)
    return scales


def near_duplicate(a: dict[str, list[Any]], b: dict[str, list[Any]], scales: dict[str, Scale]) -> bool:
    """Whether two configurations (hyperopt ``vals``: ``{label: [value] | []}``) have the same active
    parameters, the same discrete values and continuous values within :data:`NEAR` of each other."""
    a_active = {k: v[0] for k, v in a.items() if v}
    b_active = {k: v[0] for k, v in b.items() if v}
    if a_active.keys() != b_active.keys():
        return False
    for label, x in a_active.items():
        y = b_active[label]
        scale = scales.get(label)
        if scale is None or not isinstance(x, int | float) or not isinstance(y, int | float):
            if x != y:
                return False
            continue
        log, width = scale
        if log:
            if x <= 0 or y <= 0:
                if x != y:
                    return False
                continue
            x, y = math.log(x), math.log(y)
        if abs(x - y) > NEAR * width:
            return False
    return True


_IN_FLIGHT = (JOB_STATE_NEW, JOB_STATE_RUNNING)
_exact = exact_key


def redraw_seed(seed: int, attempt: int) -> int:
    """The seed of redraw ``attempt`` (0, 1, ...) of a suggestion seeded with ``seed``."""
    return (int(seed) * 1_000_003 + 7_919 * (attempt + 1)) % (2**31 - 1)


Docs = list[dict[str, Any]]


class ParallelTPE:
    """A callable with ``tpe.suggest``'s signature: :class:`FastTPE`'s suggestion unless it nearly
    duplicates a trial in flight (see the module docstring); :meth:`from_history` does the same from a
    :class:`~hyperhive.tpe_history.History` kept by the caller. One instance per search."""

    def __init__(self, tpe: FastTPE, redraws: int = REDRAWS, avoid_finished: bool = True) -> None:
        self.tpe = tpe
        self.redraws = redraws
        self.avoid_finished = avoid_finished
        self._scales: tuple[Domain, dict[str, Scale]] | None = None
        # the configurations of finished trials, by trial id: a trial's values are fixed once suggested
        # (as FastTPE assumes), so each finished trial is read once, not on every ask
        self._finished_tids: set[int] = set()
        self._finished: set[ExactKey] = set()

    def scales(self, domain: Domain) -> dict[str, Scale]:
        if self._scales is None or self._scales[0] is not domain:
            self._scales = (domain, parameter_scales(domain))
        return self._scales[1]

    def __call__(self, new_ids: list[int], domain: Domain, trials: Trials, seed: int) -> Docs:
        in_flight = []
        seen = self._finished_tids
        for d in trials.trials:
            if d["state"] in _IN_FLIGHT:
                in_flight.append(d["misc"]["vals"])
            elif self.avoid_finished and d["tid"] not in seen:
                seen.add(d["tid"])
                self._finished.add(_exact(d["misc"]["vals"]))

        def draw(s: int, n_ei: int | None) -> Docs:
            return self.tpe(new_ids, domain, trials, s, n_EI_candidates=n_ei)

        return self._choose(new_ids, domain, trials, seed, draw, in_flight, self._finished)

    def from_history(self, new_ids: list[int], domain: Domain, history: History, seed: int) -> Docs:
        """What :meth:`__call__` suggests on the trials held in ``history``."""

        def draw(s: int, n_ei: int | None) -> Docs:
            return self.tpe.from_history(new_ids, domain, history, s, n_EI_candidates=n_ei)

        finished = history.finished if self.avoid_finished else set()
        return self._choose(new_ids, domain, Trials(), seed, draw, history.in_flight(), finished)

    def _choose(
        self,
        new_ids: list[int],
        domain: Domain,
        trials: Trials,
        seed: int,
        draw: Callable[[int, int | None], Docs],
        in_flight: list[Vals],
        finished: set[ExactKey],
    ) -> Docs:
        docs = draw(seed, None)
        if not in_flight and not finished:
            return docs
        scales = self.scales(domain)

        def in_flight_duplicate(candidate: Docs) -> bool:
            vals = candidate[0]["misc"]["vals"]
            return any(near_duplicate(vals, other, scales) for other in in_flight)

        def repeat(candidate: Docs) -> bool:
            return bool(finished) and _exact(candidate[0]["misc"]["vals"]) in finished

        if not in_flight_duplicate(docs) and not repeat(docs):
            return docs
        fallback = None if in_flight_duplicate(docs) else docs
        for attempt in range(2 * self.redraws):
            s = redraw_seed(seed, attempt)
            candidate = draw(s, 1) if attempt < self.redraws else rand.suggest(new_ids, domain, trials, s)
            if not in_flight_duplicate(candidate):
                if not repeat(candidate):
                    return candidate
                fallback = fallback or candidate
        # every draw a duplicate: a repeat of a finished trial rather than a twin of one in flight
        return fallback or docs
