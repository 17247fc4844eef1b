"""Suggestions: hyperopt's algorithms asked for the next configuration from a search's history.

The engine keeps, per search and per process, the compiled hyperopt ``Domain`` and one hyperopt trial
document per stored trial. On each ask it reads only ``(id, version, state)`` of the search's trials and
re-decodes the trials whose version changed, then hands the documents to hyperopt with
``trials_from_docs(validate=False)``: history is never reloaded and re-validated in full (at 1,000
trials that alone costs ~100 ms). Random search needs no history and reads none; its draws are
``rand.suggest``'s, made by :class:`~hyperhive.rand_fast.RandomSampler` (the same values, without
hyperopt's graph interpreter per call).

Running trials are passed to hyperopt as running jobs with their sampled values and no loss; TPE counts
them as observed with infinite loss (a constant liar), and :class:`~hyperhive.tpe_parallel.ParallelTPE`
replaces a suggestion that nearly duplicates one of them, so parallel workers do not run the same
configuration twice at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from hyperopt import Trials, anneal, rand, trials_from_docs
from hyperopt.base import (
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    JOB_STATE_NEW,
    JOB_STATE_RUNNING,
    STATUS_FAIL,
    STATUS_NEW,
    STATUS_OK,
    Domain,
)

from hyperhive.models import Search, Trial, TrialState
from hyperhive.rand_fast import RandomSampler
from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_parallel import ParallelTPE, near_duplicate

if TYPE_CHECKING:
    from hyperhive.policy import InFlightRule, TrialFeed

Algorithm = Callable[..., list[dict[str, Any]]]

_CMD = ("domain_attachment", "FMinIter_Domain")


def _objective_placeholder(_: Any) -> float:
    """The Domain needs a function; workers evaluate trials, never the engine."""
    raise RuntimeError("the engine does not evaluate trials")


def make_algorithm(name: str, options: dict[str, Any]) -> Algorithm:
    """hyperopt's ``suggest`` for ``tpe``, ``random`` or ``anneal`` with the search's options bound
    (TPE as :class:`~hyperhive.tpe_fast.FastTPE`: the same suggestions, vectorised and incremental,
    wrapped in :class:`~hyperhive.tpe_parallel.ParallelTPE` against near-duplicates of trials in flight).
    The options are renamed as hyperopt names them by :func:`hyperhive.search_spaces.spec.hyperopt_options`.

    Refuses (ValueError naming the option and the limit) an option beyond
    :data:`hyperhive.search_spaces.limits.ALGORITHM_MAXIMA`, whatever stored the document."""
    from hyperhive.search_spaces.limits import ALGORITHM_MAXIMA
    from hyperhive.search_spaces.spec import hyperopt_options

    for key, limit in ALGORITHM_MAXIMA.get(name, {}).items():
        value = options.get(key)
        if value is not None and not (isinstance(value, int | float) and value <= limit):
            raise ValueError(f"algorithm.{key}: must be at most {limit:g}, got {value!r}")
    kw = hyperopt_options(name, options)  # ValueError for an unknown algorithm
    if name == "random":
        return rand.suggest
    if name == "anneal":
        return functools.partial(anneal.suggest, **kw)
    if name == "tpe":
        return ParallelTPE(FastTPE(**kw))
    raise ValueError(f"unknown algorithm {name!r}")


def trial_to_doc(trial: Trial) -> dict[str, Any] | None:
    """The hyperopt trial document of a stored trial, or ``None`` if it carries nothing to learn from
    (no suggestion yet, or cancelled before it ran)."""
    if trial.vals is None or trial.state == TrialState.CANCELLED:
        return None
    if trial.state == TrialState.DONE or (trial.state == TrialState.PRUNED and trial.loss is not None):
        state, result = JOB_STATE_DONE, {"status": STATUS_OK, "loss": trial.loss}
    elif trial.state in (TrialState.FAILED, TrialState.PRUNED):
        state, result = JOB_STATE_ERROR, {"status": STATUS_FAIL}
    elif trial.state == TrialState.RUNNING:
        state, result = JOB_STATE_RUNNING, {"status": STATUS_NEW}
    else:
        state, result = JOB_STATE_NEW, {"status": STATUS_NEW}
    tid = trial.number
    return {
        "state": state,
        "tid": tid,
        "spec": None,
        "result": result,
        "misc": {
            "tid": tid,
            "cmd": _CMD,
            "workdir": None,
            "idxs": {k: ([tid] if v else []) for k, v in trial.vals.items()},
            "vals": trial.vals,
        },
        "exp_key": None,
        "owner": None,
        "version": 0,
        "book_time": None,
        "refresh_time": None,
    }


@dataclass
class _SearchCache:
    space: Any
    domain: Domain
    algorithm: Algorithm
    needs_history: bool
    sampler: RandomSampler | None = None
    """Random search's sampler (``rand.suggest``'s draws without its interpreter), else None."""
    cursor: Any = None
    docs: dict[int, dict[str, Any]] = field(default_factory=dict)  # by trial number (hyperopt tid)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Engine:
    """Asks hyperopt for configurations (the default :class:`~hyperhive.policy.Suggester`); one per
    store object, shared by every search it sees. It reads trials through a
    :class:`~hyperhive.policy.TrialFeed` and imports no store."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, float], _SearchCache] = {}
        self._lock = threading.Lock()

    def _search_cache(self, search: Search) -> _SearchCache:
        key = (search.id, search.created_at)  # an id re-imported after a delete is another search
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                from hyperhive.search_spaces import validate

                spec = validate(search.document)
                space = spec.space
                cached = _SearchCache(
                    space=space,
                    domain=Domain(_objective_placeholder, space),
                    algorithm=make_algorithm(spec.algorithm, dict(spec.algorithm_options)),
                    needs_history=spec.algorithm != "random",
                )
                if spec.algorithm == "random":
                    cached.sampler = RandomSampler(cached.domain)
                self._cache[key] = cached
            return cached

    def history_free(self, search: Search) -> bool:
        """Whether :meth:`suggest` for ``search`` reads no other trial (random search): its suggestion
        depends only on the slot's number and seed (see ``Store._history_free``)."""
        try:
            return not self._search_cache(search).needs_history
        except Exception:  # a document that no longer compiles: suggest() reports it, the slow way
            return False

    def forget(self, search_id: str) -> None:
        """Drop what is cached for a search (it was deleted)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == search_id]:
                del self._cache[key]

    def history(self, feed: TrialFeed, search: Search) -> Trials:
        """The search's trials as a hyperopt ``Trials``, refreshed from the trials that changed."""
        cache = self._search_cache(search)
        with cache.lock:
            return self._refresh(cache, feed, search.id)

    @staticmethod
    def _refresh(cache: _SearchCache, feed: TrialFeed, search_id: str) -> Trials:
        changed, cache.cursor = feed.trials_changed_since(search_id, cache.cursor)
        for t in changed:
            doc = trial_to_doc(t)
            if doc is None:
                cache.docs.pop(t.number, None)
            else:
                cache.docs[t.number] = doc
        return trials_from_docs([cache.docs[n] for n in sorted(cache.docs)], validate=False)

    def in_flight_rule(self, search: Search) -> InFlightRule | None:
        """TPE's rule against twins of trials in flight (:func:`~hyperhive.tpe_parallel.near_duplicate`,
        the rule :class:`~hyperhive.tpe_parallel.ParallelTPE` applies to the trials it saw); ``None`` for
        random search and anneal, whose suggestions do not follow the history in flight."""
        cache = self._search_cache(search)
        algorithm = cache.algorithm
        if not isinstance(algorithm, ParallelTPE):
            return None
        scales = algorithm.scales(cache.domain)

        def clashes(vals: dict[str, list[Any]], others: list[dict[str, list[Any]]]) -> bool:
            return any(near_duplicate(vals, other, scales) for other in others)

        return clashes

    def suggest(
        self, feed: TrialFeed, search: Search, trial: Trial
    ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """The next configuration for ``trial`` (its number is hyperopt's tid, its seed the RNG seed):
        ``(vals, config)`` where ``vals`` is hyperopt's ``{label: [value] | []}`` and ``config`` the
        document-shaped sampled configuration."""
        from hyperhive.search_spaces import config_from_vals

        cache = self._search_cache(search)
        with cache.lock:
            if cache.sampler is not None:
                drawn = cache.sampler.vals(trial.number, int(trial.seed))
            else:
                trials = self._refresh(cache, feed, search.id) if cache.needs_history else Trials()
                drawn = cache.algorithm([trial.number], cache.domain, trials, int(trial.seed))[0]["misc"][
                    "vals"
                ]
        vals = {k: [_plain(x) for x in v] for k, v in drawn.items()}
        point = {k: v[0] for k, v in vals.items() if v}
        config = config_from_vals(cache.space, point)
        return vals, config


def _plain(x: Any) -> Any:
    """numpy scalars to Python ones, so that vals are JSON-serialisable."""
    if isinstance(x, np.generic):
        return x.item()
    return x
