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
3. The observations are kept per search and appended to as trials arrive: per parameter, the ids and
   values of the trials that have it, as arrays. hyperopt rebuilds them from every trial document on each
   ask (``miscs_to_idxs_vals``) and splits them into the "below" and "above" groups with Python set
   lookups (``ap_split_trials``); here the split is an array lookup and its results are handed to the
   graph directly.

A trial's sampled values are taken to be fixed once suggested (as everywhere in hyperopt): a trial whose
values object is the same one, or an equal one, is not re-read. Losses and states are re-read on every
ask, so a trial that finishes or fails is seen at once.
``tests/engine/test_tpe_fast.py`` checks identical suggestions against ``tpe.suggest``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt import pyll, rand, tpe
from hyperopt.base import Domain, Trials, miscs_update_idxs_vals
from hyperopt.pyll import scope

from hyperhive import tpe_kernels
from hyperhive.pyll_program import Program

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


class _Observations:
    """Per parameter, the ids and values of the observed trials that have it, in trial-id order,
    appended to as trials arrive (``miscs_to_idxs_vals``, incrementally)."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self._reset()

    def _reset(self) -> None:
        labels = self.labels
        self.tids: list[int] = []
        self.vals_refs: list[Any] = []
        self._idxs: dict[str, list[int]] = {k: [] for k in labels}
        self._vals: dict[str, list[Any]] = {k: [] for k in labels}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def sync(self, tids: list[int], docs: list[dict[str, Any]]) -> None:
        """Bring the observations in line with ``docs`` (the best document of each of ``tids``)."""
        n_old = len(self.tids)
        refs = [doc["misc"]["vals"] for doc in docs]
        # list == compares identical objects without looking inside them, equal ones by value
        if n_old > len(tids) or tids[:n_old] != self.tids or refs[:n_old] != self.vals_refs:
            self._reset()
            n_old = 0
        if n_old == len(tids):
            return
        for doc in docs[n_old:]:
            misc = doc["misc"]
            for label in self.labels:
                t_idxs = misc["idxs"][label]
                t_vals = misc["vals"][label]
                if len(t_idxs) != len(t_vals) or (t_idxs and t_idxs != [misc["tid"]]):
                    raise ValueError(f"trial {misc['tid']}: malformed idxs/vals for {label!r}")
                if t_idxs:
                    self._idxs[label].extend(t_idxs)
                    self._vals[label].extend(t_vals)
        self.tids = list(tids)
        self.vals_refs = refs
        self._arrays.clear()

    def arrays(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """The ids and values observed for ``label``, as arrays."""
        cached = self._arrays.get(label)
        if cached is None:
            cached = (np.asarray(self._idxs[label], dtype=np.int64), np.asarray(self._vals[label]))
            self._arrays[label] = cached
        return cached


class FastTPE:
    """A callable with ``tpe.suggest``'s signature ``(new_ids, domain, trials, seed)`` and options,
    returning the same trial documents. Holds one search's state at a time (one instance per search)."""

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
        self._observations: _Observations | None = None

    def _state(self, domain: Domain) -> tuple[_Posterior, _Observations]:
        if self._posterior is None or self._posterior.domain is not domain or self._observations is None:
            self._posterior = _Posterior(domain, self.prior_weight, self.gamma)
            self._observations = _Observations(list(domain.params))
        return self._posterior, self._observations

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
        n_candidates = self.n_EI_candidates if n_EI_candidates is None else n_EI_candidates
        if n_candidates < 1:
            raise ValueError(f"n_EI_candidates: must be at least 1, got {n_candidates}")
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

        posterior, observations = self._state(domain)
        observations.sync(tids, [best_docs[t] for t in tids])
        loss_idxs = np.asarray(tids, dtype=np.int64)
        is_below = tpe_kernels.below_mask(
            np.asarray([best_docs_loss[t] for t in tids], dtype=float), posterior.gamma, posterior.gamma_cap
        )

        first_new_id = new_ids[0]
        if tids:
            fake_id_0 = max(max(tids), first_new_id) + 2
        else:
            if self.n_startup_jobs > 0:
                raise AssertionError("no history past the start-up trials")
            fake_id_0 = first_new_id + 2
        fake_ids = list(range(fake_id_0, fake_id_0 + n_candidates))

        memo: dict[Any, Any] = {domain.s_new_ids: fake_ids, domain.s_rng: np.random.default_rng(seed)}
        for label, node in posterior.split_nodes.items():
            obs_idxs, obs_vals = observations.arrays(label)
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
