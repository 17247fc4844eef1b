"""``hyperhive retrain``: train a search's best configuration again, with its seed, and save the model.

The retrained model sees the same dataset (same content hash when the data did not change), the same
configuration and the same seed as the original trial, so on the same backend and device its metrics
match the recorded ones up to nondeterministic kernels (GPU).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive.errors import HyperhiveError
from hyperhive.models import Search, Trial, TrialState
from hyperhive.store.base import Store

MODEL_SUFFIXES = (".keras", ".h5")


class RetrainError(HyperhiveError):
    """The search or trial cannot be retrained; the message says why."""


@dataclass
class Retrained:
    search: Search
    trial: Trial
    metrics: dict[str, Any]
    path: Path
    dataset_sha256: str


def pick_trial(store: Store, search_id: str, trial_id: str | None = None) -> tuple[Search, Trial]:
    """The search and the trial to retrain: ``trial_id``, or the search's best done trial."""
    search = store.get_search(search_id)
    if (search.document.get("objective") or {}).get("function"):
        raise RetrainError(f"search {search_id} optimises a function objective; there is no model to retrain")
    if trial_id is not None:
        trial = store.get_trial(trial_id)
        if trial.search_id != search.id:
            raise RetrainError(f"trial {trial_id} belongs to search {trial.search_id}, not {search_id}")
    else:
        best = store.best_trial(search_id)
        if best is None:
            raise RetrainError(f"search {search_id} has no done trial yet; nothing to retrain")
        trial = best
    if trial.state != TrialState.DONE or not trial.config:
        raise RetrainError(f"trial {trial.id} is {trial.state}; only done trials can be retrained")
    return search, trial


def retrain(
    store: Store,
    search_id: str,
    out: Path,
    *,
    trial_id: str | None = None,
    epochs: int | None = None,
    data_dir: Path | None = None,
    log: logging.Logger | None = None,
) -> Retrained:
    """Retrain and save to ``out`` (``.keras`` or ``.h5``); returns the new metrics."""
    from hyperhive.workers.backend import release_trial_memory
    from hyperhive.workers.datasets import search_dataset
    from hyperhive.workers.training import run_keras_trial

    if out.suffix not in MODEL_SUFFIXES:
        raise RetrainError(f"--out {out}: Keras saves whole models as .keras (or .h5) files")
    search, trial = pick_trial(store, search_id, trial_id)
    config = copy.deepcopy(trial.config or {})
    if epochs is not None:
        config.setdefault("training", {})["epochs"] = epochs
    dataset, evaluate_test = search_dataset(search.document, store=store, data_dir=data_dir)
    outcome = run_keras_trial(
        config,
        dataset,
        seed=trial.seed,
        objective_metric=search.objective_metric,
        evaluate_test=evaluate_test,
        label=f"retrain-{trial.id}",
        log=log,
        keep_model=True,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        assert outcome.model is not None
        outcome.model.save(out)
    finally:
        outcome.model = None
        release_trial_memory()
    return Retrained(
        search=search, trial=trial, metrics=outcome.metrics, path=out, dataset_sha256=dataset.sha256
    )
