"""hyperopt's TPE, suggesting exactly what ``hyperopt.tpe.suggest`` suggests, without its slow paths.

:class:`FastTPE` is a callable with ``tpe.suggest``'s signature ``(new_ids, domain, trials, seed)``. It runs
hyperopt's own TPE posterior graph (``tpe.build_posterior_wrapper``: the same adaptive Parzen
estimators, the same samplers drawing from the same ``np.random.default_rng(seed)`` in the same order),
with three changes that do not alter any result:

1. The graph is built once per search (a ``Domain``) instead of on every ask, and compiled into a
   straight-line program that calls its nodes in ``pyll.rec_eval``'s order (:mod:`hyperhive.pyll_program`).
2. The candidates' log-densities are scored by the vectorised kernels of :mod:`hyperhive.tpe_kernels`
   (bit-identical to ``GMM1_lpdf`` / ``LGMM1_lpdf``; hyperopt loops over every past trial in Python for
   quantised parameters).
3. The observations are kept per search in a :class:`~hyperhive.tpe_history.History` and appended to
   as trials arrive: per parameter, the ids and values of the trials that have it, as arrays, and the
   losses. hyperopt rebuilds them from every trial document on each ask (``miscs_to_idxs_vals``) and
   splits them into the "below" and "above" groups with Python set lookups (``ap_split_trials``); here
   the split is an array lookup and its results are handed to the graph directly.

:meth:`FastTPE.from_history` suggests from a History the caller keeps (the engine feeds it from the
store's change feed: no ``Trials`` at all); :meth:`FastTPE.__call__` keeps one in line with a ``Trials``.
There a trial's sampled values are taken to be fixed once suggested (as everywhere in hyperopt): a trial
whose values object is the same one, or an equal one, is not re-read; losses and states are re-read on
every ask, so a trial that finishes or fails is seen at once.
``tests/engine/test_tpe_fast.py`` and ``tests/engine/test_tpe_history.py`` check identical suggestions
against ``tpe.suggest``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt import pyll, rand, tpe
from hyperopt.base import Domain, Trials, miscs_update_idxs_vals
from hyperopt.pyll import scope

from hyperhive import tpe_kernels
from hyperhive.pyll_program import Program
from hyperhive.tpe_history import History

_KERNELS = {"GMM1_lpdf": tpe_kernels.gmm1_lpdf, "LGMM1_lpdf": tpe_kernels.lgmm1_lpdf}


def _pyll_name(name: str) -> str:
    """The pyll symbol under which the vectorised version of hyperopt's ``name`` is registered."""
    return f"hyperhive_vectorised_{name}"


def _register(name: str, kernel: Any) -> None:
    """Register ``kernel`` as a pyll symbol (``rec_eval`` calls nodes' functions by symbol name)."""
    if hasattr(scope, _pyll_name(name)):
        return

    def call(*args: Any, **kwargs: Any) -> Any:
        return kernel(*args, **kwargs)

    call.__name__ = call.__qualname__ = _pyll_name(name)
    scope.define(call)


for _name, _kernel in _KERNELS.items():
    _register(_name, _kernel)


class _Posterior:
    """hyperopt's TPE posterior graph for one domain, with the vectorised kernels swapped in and its
    per-parameter below/above split nodes located, so that their values can be supplied directly."""

    def __init__(self, domain: Domain, prior_weight: float, gamma: float) -> None:
        self.domain = domain
        _observed, _observed_loss, self.graph = tpe.build_posterior_wrapper(domain, prior_weight, gamma)
        self.split_nodes: dict[str, Any] = {}
        self.gamma = gamma
        self.gamma_cap = tpe.DEFAULT_LF
        for node in pyll.dfs(pyll.as_apply(self.graph)):
            if node.name in _KERNELS:
                node.name = _pyll_name(node.name)
            elif node.name == "ap_split_trials":
                label = node.pos_args[0].pos_args[1].obj  # getitem(observed["idxs"], label)
                self.split_nodes[label] = node
                if node.named_args or len(node.pos_args) != 5:
                    raise ValueError("unexpected ap_split_trials node in hyperopt's TPE graph")
        if set(self.split_nodes) != set(domain.params):
            raise ValueError("hyperopt's TPE graph does not split every parameter", sorted(domain.params))
        self.program = Program(self.graph, [domain.s_new_ids, domain.s_rng, *self.split_nodes.values()])


class _TrialsMirror:
    """A :class:`~hyperhive.tpe_history.History` kept in line with a hyperopt ``Trials`` between calls:
    trials whose values are the same objects (or equal ones) as last time are not re-read."""

    def __init__(self, labels: list[str]) -> None:
        self.history = History(labels)
        self._tids: list[int] = []
        self._refs: list[Any] = []

    def sync(self, tids: list[int], docs: list[dict[str, Any]], losses: list[float]) -> History:
        """The history of ``docs`` (the best document of each of ``tids``, with its ``losses``)."""
        history = self.history
        n_old = len(self._tids)
        refs = [doc["misc"]["vals"] for doc in docs]
        # list == compares identical objects without looking inside them, equal ones by value
        if n_old > len(tids) or tids[:n_old] != self._tids or refs[:n_old] != self._refs:
            history.clear()
            n_old = 0
        for doc in docs[n_old:]:
            misc = doc["misc"]
            for label in history.labels:
                t_idxs = misc["idxs"][label]
                if len(t_idxs) != len(misc["vals"][label]) or (t_idxs and t_idxs != [misc["tid"]]):
                    raise ValueError(f"trial {misc['tid']}: malformed idxs/vals for {label!r}")
        for tid, doc, loss in zip(tids[n_old:], docs[n_old:], losses[n_old:], strict=True):
            history.set(tid, doc["misc"]["vals"], loss, in_flight=False)
        history.replace_losses(losses)
        self._tids = list(tids)
        self._refs = refs
        return history


_NO_TRIALS = Trials()
"""Only its ``new_trial_docs`` is used, which reads nothing of the trials held (none)."""


class FastTPE:
    """A callable with ``tpe.suggest``'s signature ``(new_ids, domain, trials, seed)`` and options,
    returning the same trial documents; :meth:`from_history` suggests the same from a
    :class:`~hyperhive.tpe_history.History` kept by the caller. Holds one search's state at a time
    (one instance per search)."""

    def __init__(
        self,
        prior_weight: float = tpe._default_prior_weight,
        n_startup_jobs: int = tpe._default_n_startup_jobs,
        n_EI_candidates: int = tpe._default_n_EI_candidates,
        gamma: float = tpe._default_gamma,
    ) -> None:
        self.prior_weight = prior_weight
        self.n_startup_jobs = n_startup_jobs
        self.n_EI_candidates = n_EI_candidates
        self.gamma = gamma
        self._posterior: _Posterior | None = None
        self._mirror: _TrialsMirror | None = None

    def posterior(self, domain: Domain) -> _Posterior:
        if self._posterior is None or self._posterior.domain is not domain:
            self._posterior = _Posterior(domain, self.prior_weight, self.gamma)
            self._mirror = None
        return self._posterior

    def __call__(
        self,
        new_ids: list[int],
        domain: Domain,
        trials: Trials,
        seed: int,
        *,
        n_EI_candidates: int | None = None,
    ) -> list[dict[str, Any]]:
        """``tpe.suggest(new_ids, domain, trials, seed)`` with this instance's options; ``n_EI_candidates``
        overrides the instance's for this call (1: a draw from the density of good configurations)."""
        _candidates(self, n_EI_candidates)
        # The best document per trial id, and its loss (infinite for unfinished or failed trials),
        # exactly as in tpe.suggest.
        best_docs: dict[int, Any] = {}
        best_docs_loss: dict[int, float] = {}
        for doc in trials.trials:
            tid = doc["misc"].get("from_tid", doc["tid"])
            loss = doc["result"].get("loss")
            loss = float("inf") if loss is None else float(loss)
            best_docs_loss.setdefault(tid, loss)
            if loss <= best_docs_loss[tid]:
                best_docs_loss[tid] = loss
                best_docs[tid] = doc
        tids = sorted(best_docs)
        if len(tids) < self.n_startup_jobs:
            return rand.suggest(new_ids, domain, trials, seed)
        self.posterior(domain)
        if self._mirror is None:
            self._mirror = _TrialsMirror(list(domain.params))
        history = self._mirror.sync(tids, [best_docs[t] for t in tids], [best_docs_loss[t] for t in tids])
        return self.from_history(
            new_ids, domain, history, seed, n_EI_candidates=n_EI_candidates, trials=trials
        )

    def from_history(
        self,
        new_ids: list[int],
        domain: Domain,
        history: History,
        seed: int,
        *,
        n_EI_candidates: int | None = None,
        trials: Trials | None = None,
    ) -> list[dict[str, Any]]:
        """What ``tpe.suggest`` suggests on the trials held in ``history`` (with the options of
        :meth:`__call__`); ``trials`` (default: an empty one) only makes the returned documents."""
        n_candidates = _candidates(self, n_EI_candidates)
        trials = _NO_TRIALS if trials is None else trials
        if len(history) < self.n_startup_jobs:
            return rand.suggest(new_ids, domain, trials, seed)
        posterior = self.posterior(domain)
        loss_idxs = history.tids()
        is_below = tpe_kernels.below_mask(history.losses(), posterior.gamma, posterior.gamma_cap)

        first_new_id = new_ids[0]
        if len(loss_idxs):
            fake_id_0 = max(int(loss_idxs[-1]), first_new_id) + 2
        else:
            if self.n_startup_jobs > 0:
                raise AssertionError("no history past the start-up trials")
            fake_id_0 = first_new_id + 2
        fake_ids = list(range(fake_id_0, fake_id_0 + n_candidates))

        memo: dict[Any, Any] = {domain.s_new_ids: fake_ids, domain.s_rng: np.random.default_rng(seed)}
        for label, node in posterior.split_nodes.items():
            obs_idxs, obs_vals = history.observations(label)
            memo[node] = tpe_kernels.split_observations(obs_idxs, obs_vals, loss_idxs, is_below)
        idxs, vals = posterior.program.run(memo)

        for label, param in domain.params.items():
            if param.name == "randint" and len(param.pos_args) == 2:
                offset = param.pos_args[0].obj
                vals[label] = [val + offset for val in vals[label]]

        rval_miscs = [{"tid": first_new_id, "cmd": domain.cmd, "workdir": domain.workdir}]
        miscs_update_idxs_vals(
            rval_miscs, idxs, vals, idxs_map={fake_ids[0]: first_new_id}, assert_all_vals_used=False
        )
        return trials.new_trial_docs([first_new_id], [None], [domain.new_result()], rval_miscs)


def _candidates(tpe_: FastTPE, n_EI_candidates: int | None) -> int:
    n = tpe_.n_EI_candidates if n_EI_candidates is None else n_EI_candidates
    if n < 1:
        raise ValueError(f"n_EI_candidates: must be at least 1, got {n}")
    return n
