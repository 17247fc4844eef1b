"""hyperopt's TPE with its posterior graph built once per search instead of on every ask.

``hyperopt.tpe.suggest`` rebuilds the pyll graph of the TPE posterior (``build_posterior_wrapper``)
on every call, although it depends only on the space, ``prior_weight`` and ``gamma``; on a 10-parameter
space that is about a third of each ask. :class:`CachedTPE` is ``tpe.suggest`` (hyperopt 0.2.7-0.3.x)
with that graph kept between calls; everything else is hyperopt's own code path and functions, and
``tests/engine/test_tpe_cache.py`` checks that it suggests exactly what ``tpe.suggest`` suggests.

Superseded in the engine by :class:`hyperhive.tpe_fast.FastTPE` (this cache plus vectorised kernels and
incremental observations); kept as the intermediate step that ``benchmarks/tpe_scale.py`` compares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt import pyll, rand, tpe
from hyperopt.base import Domain, Trials, miscs_to_idxs_vals, miscs_update_idxs_vals


class CachedTPE:
    """A callable with ``tpe.suggest``'s signature ``(new_ids, domain, trials, seed)`` and options."""

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
        self._graphs: dict[int, tuple[Domain, Any, Any, Any]] = {}

    def _posterior(self, domain: Domain) -> tuple[Any, Any, Any]:
        cached = self._graphs.get(id(domain))
        if cached is None or cached[0] is not domain:
            observed, observed_loss, posterior = tpe.build_posterior_wrapper(
                domain, self.prior_weight, self.gamma
            )
            cached = (domain, observed, observed_loss, posterior)
            self._graphs = {id(domain): cached}  # one search's domain per instance
        return cached[1], cached[2], cached[3]

    def __call__(self, new_ids: list[int], domain: Domain, trials: Trials, seed: int) -> list[dict[str, Any]]:
        # From here on this follows hyperopt.tpe.suggest line by line.
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
        tid_docs = sorted(best_docs.items())
        losses = [best_docs_loss[tid] for tid, _ in tid_docs]
        tids, docs = list(zip(*tid_docs, strict=True)) if tid_docs else ([], [])

        if len(docs) < self.n_startup_jobs:
            return rand.suggest(new_ids, domain, trials, seed)

        observed, observed_loss, posterior = self._posterior(domain)
        first_new_id = new_ids[0]
        if tids:
            fake_id_0 = max(max(tids), first_new_id) + 2
        else:
            assert self.n_startup_jobs <= 0
            fake_id_0 = first_new_id + 2
        fake_ids = list(range(fake_id_0, fake_id_0 + self.n_EI_candidates))

        memo = {domain.s_new_ids: fake_ids, domain.s_rng: np.random.default_rng(seed)}
        memo[observed_loss["idxs"]] = tids
        memo[observed_loss["vals"]] = losses
        observed_idxs_dict, observed_vals_dict = miscs_to_idxs_vals(
            [doc["misc"] for doc in docs], keys=list(domain.params.keys())
        )
        memo[observed["idxs"]] = observed_idxs_dict
        memo[observed["vals"]] = observed_vals_dict
        idxs, vals = pyll.rec_eval(posterior, memo=memo, print_node_on_error=False)

        for label, param in domain.params.items():
            if param.name == "randint" and len(param.pos_args) == 2:
                offset = param.pos_args[0].obj
                vals[label] = [val + offset for val in vals[label]]

        rval_specs = [None]
        rval_results = [domain.new_result()]
        rval_miscs = [{"tid": first_new_id, "cmd": domain.cmd, "workdir": domain.workdir}]
        miscs_update_idxs_vals(
            rval_miscs, idxs, vals, idxs_map={fake_ids[0]: first_new_id}, assert_all_vals_used=False
        )
        return trials.new_trial_docs([first_new_id], rval_specs, rval_results, rval_miscs)
