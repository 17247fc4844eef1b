"""Trials that fail because of the search document itself fail the search at once (real worker, real
SQLite store): an objective function that cannot be imported or is refused, a dataset that cannot be
loaded, a model that no configuration of the space can build. Failures of one trial (an objective that
raises, an unreachable store) keep the ``max_consecutive_failures`` rule, and a budget spent without a
successful trial ends ``failed``, not ``completed``."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from workerkit import FlakyStore, create_search, function_doc, keras_doc, run_worker, worker_options

from hyperhive.models import DatasetInfo, SearchStatus, TrialState
from hyperhive.store import SQLiteStore
from hyperhive.workers.daemon import Worker


def assert_failed_at_once(store: SQLiteStore, search_id: str, *expected: str) -> None:
    """One trial ran, the search failed with that trial's error, the rest of the budget is untouched."""
    s = store.get_search(search_id)
    assert s.status == SearchStatus.FAILED, (s.status, s.error)
    assert s.counts.total == 1 and s.counts.failed == 1, s.counts
    (t,) = store.list_trials(search_id)
    assert t.info.get("error_kind") == "search"
    assert s.error and "search document" in s.error
    for text in expected:
        assert text in s.error and text in (t.error or ""), (text, s.error)
    assert "Traceback" not in s.error


def test_an_unimportable_objective_fails_the_search_after_one_trial(
    store: SQLiteStore, tmp_path: Path
) -> None:
    doc = {**function_doc(max_trials=10, function="hh_no_such_module:f"), "max_consecutive_failures": 5}
    search = create_search(store, doc)
    worker = run_worker(store, tmp_path, allow_objective=["hh_no_such_module"])
    assert worker.trials_run == 1
    assert_failed_at_once(store, search.id, "cannot import 'hh_no_such_module'")


def test_a_missing_callable_and_a_refused_module_fail_the_search_at_once(
    store: SQLiteStore, tmp_path: Path
) -> None:
    missing = create_search(store, {**function_doc(max_trials=5, function="hh_objectives:nope"), "name": "m"})
    refused = create_search(store, {**function_doc(max_trials=5, function="os:getcwd"), "name": "r"})
    worker = run_worker(store, tmp_path)
    assert worker.trials_run == 2
    assert_failed_at_once(store, missing.id, "has no 'nope'")
    assert_failed_at_once(store, refused.id, "refused", "--allow-objective")


def test_an_objective_that_raises_keeps_the_consecutive_failure_rule(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """The user's function raising is a failure of that trial (it may depend on the parameters)."""
    doc = {**function_doc(max_trials=10, function="hh_objectives:boom"), "max_consecutive_failures": 3}
    search = create_search(store, doc)
    worker = run_worker(store, tmp_path)
    assert worker.trials_run == 3
    s = store.get_search(search.id)
    assert s.status == SearchStatus.FAILED and s.error and s.error.startswith("3 consecutive trials failed")
    assert all("error_kind" not in t.info for t in store.list_trials(search.id))


def test_a_budget_spent_without_a_successful_trial_ends_failed(store: SQLiteStore, tmp_path: Path) -> None:
    doc = {**function_doc(max_trials=2, function="hh_objectives:boom"), "max_consecutive_failures": 5}
    search = create_search(store, doc)
    run_worker(store, tmp_path)
    s = store.get_search(search.id)
    assert s.status == SearchStatus.FAILED and s.counts.failed == 2
    assert s.error and s.error.startswith(
        "no trial succeeded (2 failed); last error: RuntimeError: objective"
    )


def test_a_missing_npz_path_fails_the_search_after_one_trial(store: SQLiteStore, tmp_path: Path) -> None:
    """No Keras needed: the dataset is loaded before anything is built."""
    missing = tmp_path / "nowhere" / "data.npz"
    search = create_search(store, keras_doc(max_trials=10, dataset={"path": str(missing)}))
    worker = run_worker(store, tmp_path)
    assert worker.trials_run == 1
    assert_failed_at_once(store, search.id, "DatasetError", str(missing), "no such file")


def test_an_upload_deleted_from_the_store_fails_the_search_after_one_trial(
    store: SQLiteStore, tmp_path: Path
) -> None:
    search = create_search(store, keras_doc(max_trials=10, dataset={"upload": "gone"}))
    run_worker(store, tmp_path)
    assert_failed_at_once(store, search.id, "dataset upload 'gone'", "not found")


def test_an_unreachable_store_while_fetching_an_upload_is_not_the_documents_fault(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """A lost store fails the trial (the search goes on) but never the search at once."""
    x = np.zeros((20, 8, 8), dtype=np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=np.arange(20) % 2)
    data = path.read_bytes()
    info = DatasetInfo(
        id="up1", name="d.npz", owner=None, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        created_at=time.time(),
    )  # fmt: skip
    store.save_dataset(info, [data])
    search = create_search(store, keras_doc(max_trials=3, dataset={"upload": "up1"}))
    flaky: Any = FlakyStore(store, get_dataset=100)  # down for the whole trial
    worker = Worker(flaky, worker_options(tmp_path, max_trials=1))
    worker.work()
    (t,) = store.list_trials(search.id)
    assert t.state == TrialState.FAILED and t.error and "StoreUnavailable" in t.error
    assert "error_kind" not in t.info
    assert store.get_search(search.id).status == SearchStatus.RUNNING


@pytest.mark.slow
def test_a_model_no_configuration_can_build_fails_the_search_after_one_trial(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """A 9x9 kernel on 8x8 digits, whatever the sampled filters: the first trial fails the search (after
    the worker built a few other configurations of the space, which all fail the same way)."""
    layers = [
        {"type": "Conv2D", "filters": {"choice": [4, 8]}, "kernel_size": 9, "activation": "relu"},
        {"type": "Flatten"},
    ]
    search = create_search(store, keras_doc(layers, max_trials=10, max_consecutive_failures=5))
    worker = run_worker(store, tmp_path)
    assert worker.trials_run == 1
    assert_failed_at_once(store, search.id, "ModelBuildError: model.layers[0] (Conv2D)")


@pytest.mark.slow
def test_a_build_error_of_some_configurations_fails_only_their_trials(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """``kernel_size`` 9 cannot be built on 8x8 images but 3 can: trials drawing 9 fail on their own
    and the search goes on to its whole budget."""
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": {"choice": [3, 9]}}, {"type": "Flatten"}]
    training = {"epochs": 1, "batch_size": 256, "optimizer": {"type": "Adam", "learning_rate": 0.01}}
    search = create_search(
        store, keras_doc(layers, training, max_trials=6, seed=3, max_consecutive_failures=6)
    )
    run_worker(store, tmp_path)
    s = store.get_search(search.id)
    trials = store.list_trials(search.id)
    assert s.counts.total == 6 and s.counts.failed >= 1, [t.config for t in trials]
    assert all("error_kind" not in t.info for t in trials)
    assert s.status == SearchStatus.COMPLETED and s.counts.done >= 1
