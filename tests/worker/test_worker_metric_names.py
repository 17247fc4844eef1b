"""The worker reports exactly the metric names the API accepts as a Keras search's objective.metric
(hyperhive.search_spaces.metric_names): none the API refuses, and every one the API accepts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from workerkit import TINY_CNN

from hyperhive.search_spaces.metric_names import (
    EPOCH_LOG_METRICS,
    KERAS_OBJECTIVE_METRICS,
    TEST_METRICS,
    VALIDATION_METRICS,
)
from hyperhive.workers.metrics import split_metrics


def scalar_names(metrics: dict[str, Any]) -> set[str]:
    return {k for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@pytest.mark.parametrize(("prefix", "expected"), [("val", VALIDATION_METRICS), ("test", TEST_METRICS)])
def test_split_metrics_are_the_listed_names(prefix: str, expected: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=20)
    y = rng.integers(0, 3, size=20)
    out = split_metrics(y, probs, 3, prefix, lambda yt, p: 0.5)
    assert scalar_names(out) == set(expected)


@pytest.mark.slow
def test_a_keras_trial_reports_every_objective_metric_and_logs_the_monitor_names() -> None:
    from hyperhive.workers.datasets import load_dataset
    from hyperhive.workers.training import run_keras_trial

    config = {"model": {"layers": TINY_CNN}, "training": {"epochs": 1, "batch_size": 128}}
    out = run_keras_trial(config, load_dataset("digits"), seed=1, evaluate_test=True)
    assert scalar_names(out.metrics) == set(KERAS_OBJECTIVE_METRICS)
    assert set(EPOCH_LOG_METRICS) <= set(out.history[0])
