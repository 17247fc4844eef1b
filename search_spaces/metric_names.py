"""The metric names a Keras trial reports: what ``objective.metric`` and ``early_stopping.monitor`` may name.

The worker (:mod:`hyperhive.workers.metrics`, :mod:`hyperhive.workers.training`) produces exactly these
names; its tests
check that it produces no other and none fewer. A function search (``objective.function``) reports
whatever its function returns, so its metric names are not restricted.
"""

from __future__ import annotations

SPLIT_SCALARS = ("loss", "accuracy", "precision", "recall", "f1")
"""Scored on each evaluated split, as ``val_<name>`` and ``test_<name>`` (precision, recall, f1: macro)."""

VALIDATION_METRICS = tuple(f"val_{name}" for name in SPLIT_SCALARS)
TEST_METRICS = tuple(f"test_{name}" for name in SPLIT_SCALARS)
"""Only with ``dataset.test: true`` (the test split is evaluated then)."""

TRAINING_METRICS = ("train_loss", "train_accuracy", "params", "epochs", "train_time")
"""The last epoch's training loss and accuracy, the model's parameter count, epochs run, seconds in fit."""

KERAS_OBJECTIVE_METRICS = (*VALIDATION_METRICS, *TEST_METRICS, *TRAINING_METRICS)
"""Every scalar a Keras trial reports."""

EPOCH_LOG_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
"""What Keras logs after each epoch (the model is compiled with ``metrics=["accuracy"]``): the names
``training.early_stopping.monitor`` may watch."""
