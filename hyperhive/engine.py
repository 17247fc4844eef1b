"""Suggestions: hyperopt's algorithms asked for the next configuration from a search's history.

The engine keeps, per search and per process (for the :data:`MAX_CACHED_SEARCHES` searches asked last),
the compiled hyperopt ``Domain`` and what it knows of the search's trials, updated on each ask from the
store's change feed (``trials_changed_since``: only the trials written since the last ask): one hyperopt
trial document per stored trial (for random search, anneal and :meth:`Engine.history`), and for TPE a
:class:`~hyperhive.tpe_history.History` (losses and per-parameter observations as arrays, appended to),
from which :class:`~hyperhive.tpe_parallel.ParallelTPE` suggests without a ``Trials`` being built. A
trial that changes state or loss is updated in place, a new one inserted at its number's place, one
failed or cancelled before it ran removed from its place (hyperopt's TPE does not see failed trials); only
a trial whose sampled values change makes the history rebuild its observations (from memory). Random
search needs no history and reads none; its draws are ``rand.suggest``'s, made by
:class:`~hyperhive.rand_fast.RandomSampler` (the same values, without hyperopt's graph interpreter).

Running trials are passed to hyperopt as running jobs with their sampled values and no loss; TPE counts
them as observed with infinite loss (a constant liar), and :class:`~hyperhive.tpe_parallel.ParallelTPE`
replaces a suggestion that nearly duplicates one of them, so parallel workers do not run the same
configuration twice at once.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

from hyperhive import tpe_parallel
from hyperhive.models import Search, Trial, TrialState
from hyperhive.rand_fast import RandomSampler, plain
from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_history import History
from hyperhive.tpe_parallel import ParallelTPE, near_duplicate

if TYPE_CHECKING:
    from hyperhive.policy import InFlightRule, TrialFeed

Algorithm = Callable[..., list[dict[str, Any]]]

_CMD = ("domain_attachment", "FMinIter_Domain")

MAX_CACHED_SEARCHES = 64
"""Searches whose state an engine keeps; the one asked least recently is dropped first (and re-read
from the store's change feed in full if it is asked again)."""


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
    sampler: RandomSampler | None = None
    """Random search's sampler (``rand.suggest``'s draws without its interpreter, reading no history),
    else None (every other algorithm reads the search's trials)."""
    cursor: Any = None
    docs: dict[int, dict[str, Any]] = field(default_factory=dict)  # by trial number (hyperopt tid)
    tpe: History | None = None  # for FastTPE / ParallelTPE
    lock: threading.Lock = field(default_factory=threading.Lock)


def _loss(doc: dict[str, Any]) -> float:
    """The loss TPE reads from a trial document (``tpe.suggest``'s rule: infinite without one)."""
    loss = doc["result"].get("loss")
    return math.inf if loss is None else float(loss)


class Engine:
    """Asks hyperopt for configurations (the default :class:`~hyperhive.policy.Suggester`); one per
    store object, shared by every search it sees. It reads trials through a
    :class:`~hyperhive.policy.TrialFeed` and imports no store."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, float], _SearchCache] = OrderedDict()
        self._lock = threading.Lock()

    def _search_cache(self, search: Search) -> _SearchCache:
        key = (search.id, search.created_at)  # an id re-imported after a delete is another search
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        from hyperhive.search_spaces import validate

        spec = validate(search.document)
        space = spec.space
        domain = Domain(_objective_placeholder, space)
        algorithm = make_algorithm(spec.algorithm, dict(spec.algorithm_options))
        # by class, not by this module's ParallelTPE name (benchmarks/search_quality.py --before patches it)
        tpe_like = isinstance(algorithm, FastTPE | tpe_parallel.ParallelTPE)
        fresh = _SearchCache(
            space=space,
            domain=domain,
            algorithm=algorithm,
            sampler=RandomSampler(domain) if spec.algorithm == "random" else None,
            tpe=History(list(domain.params)) if tpe_like else None,
        )
        with self._lock:
            cached = self._cache.setdefault(key, fresh)  # another thread may have made it meanwhile
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_CACHED_SEARCHES:
                self._cache.popitem(last=False)
            return cached

    def history_free(self, search: Search) -> bool:
        """Whether :meth:`suggest` for ``search`` reads no other trial (random search): its suggestion
        depends only on the slot's number and seed (see ``Store._history_free``)."""
        try:
            return self._search_cache(search).sampler is not None
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
            self._refresh(cache, feed, search.id)
            return self._trials(cache)

    @staticmethod
    def _trials(cache: _SearchCache) -> Trials:
        return trials_from_docs([cache.docs[n] for n in sorted(cache.docs)], validate=False)

    @staticmethod
    def _refresh(cache: _SearchCache, feed: TrialFeed, search_id: str) -> None:
        changed, cache.cursor = feed.trials_changed_since(search_id, cache.cursor)
        tpe = cache.tpe
        for t in changed:
            doc = trial_to_doc(t)
            if doc is None:
                cache.docs.pop(t.number, None)
                if tpe is not None:
                    tpe.remove(t.number)
                continue
            cache.docs[t.number] = doc
            if tpe is None:
                continue
            if doc["state"] == JOB_STATE_ERROR:  # not in hyperopt's Trials.trials: TPE never sees it
                tpe.remove(t.number)
            else:
                in_flight = doc["state"] in (JOB_STATE_NEW, JOB_STATE_RUNNING)
                tpe.set(t.number, doc["misc"]["vals"], _loss(doc), in_flight)

    def in_flight_rule(self, search: Search) -> InFlightRule | None:
        """TPE's rule against twins of trials in flight (:func:`~hyperhive.tpe_parallel.near_duplicate`,
        the rule :class:`~hyperhive.tpe_parallel.ParallelTPE` applies to the trials it saw); ``None`` for
        random search and anneal, whose suggestions do not follow the history in flight."""
        cache = self._search_cache(search)
        algorithm = cache.algorithm
        if not isinstance(algorithm, tpe_parallel.ParallelTPE):  # by class: search_quality --before patches
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
        from hyperhive.search_spaces import config_from_draw, config_from_vals

        cache = self._search_cache(search)
        if cache.sampler is not None:  # reads no state: no lock
            drawn = cache.sampler.vals(trial.number, int(trial.seed))
            vals = {k: [plain(x) for x in v] for k, v in drawn.items()}
            return vals, config_from_draw(cache.space, {k: v[0] for k, v in vals.items() if v})
        with cache.lock:
            if cache.tpe is not None:
                self._refresh(cache, feed, search.id)
                algorithm: Any = cache.algorithm
                new_docs = algorithm.from_history([trial.number], cache.domain, cache.tpe, int(trial.seed))
                drawn = new_docs[0]["misc"]["vals"]
            else:  # anneal
                self._refresh(cache, feed, search.id)
                new_docs = cache.algorithm([trial.number], cache.domain, self._trials(cache), int(trial.seed))
                drawn = new_docs[0]["misc"]["vals"]
        vals = {k: [plain(x) for x in v] for k, v in drawn.items()}
        point = {k: v[0] for k, v in vals.items() if v}
        config = config_from_vals(cache.space, point)
        return vals, config
