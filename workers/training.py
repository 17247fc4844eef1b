"""One Keras trial: build the model a configuration describes, compile it, fit it, evaluate it.

:func:`run_keras_trial` is the whole of it. Contract:

- Seeds: ``keras.utils.set_random_seed(seed)`` before anything is built (Python, NumPy and the backend).
- Data: the dataset's validation split, else ``training.validation_split`` (default
  :data:`DEFAULT_VALIDATION_SPLIT`) held out of the training set, the same samples for every trial.
- After each epoch a row ``{epoch, loss, accuracy, val_loss, val_accuracy, time}`` (plus ``val_precision``,
  ``val_recall`` and ``val_f1`` when one of them is the objective, so that pruning can read it) is
  appended to the history and ``on_epoch(history)`` is called; when it returns True, or ``should_stop()``
  turns True (checked after every batch), training stops and the outcome is ``stopped`` (no final
  metrics: the trial is pruned, cancelled or handed back). ``training.early_stopping`` ends training
  normally.
- Final metrics (:mod:`hyperhive.workers.metrics`): validation (and test when ``evaluate_test`` and the
  dataset has a
  test split), plus ``train_loss``, ``train_accuracy`` (last epoch), ``params``, ``epochs`` (run) and
  ``train_time`` (seconds in ``fit``).
- Afterwards the model is dropped and :func:`hyperhive.workers.backend.release_trial_memory` frees what the
  trial
  left (unless ``keep_model``, for ``hyperhive retrain``: the caller then releases).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperhive.search_spaces import TRAINING_DEFAULTS
from hyperhive.workers.backend import import_keras, release_trial_memory
from hyperhive.workers.datasets import Dataset
from hyperhive.workers.metrics import scalar_scores, split_metrics
from hyperhive.workers.model_builder import ModelBuildError, build_model, layer_summary
from hyperhive.workers.optimizers import (
    TrainingConfigError,
    build_loss,
    build_optimizer,
    loss_name,
    sparse_labels,
)

DEFAULT_VALIDATION_SPLIT = 0.1
EPOCH_SCORES = ("val_precision", "val_recall", "val_f1")
PREDICT_BATCH = 512

EpochHook = Callable[[list[dict[str, Any]]], bool]

_log = logging.getLogger("hyperhive.worker")


@dataclass
class TrainingOutcome:
    """What a Keras trial produced. ``stopped``: interrupted by ``on_epoch``/``should_stop`` (no
    ``metrics``). ``timings`` holds seconds spent in ``build``, ``compile``, ``fit``, ``evaluate`` and
    ``release``; ``info`` the model's ``params`` and ``layers`` and the dataset's description."""

    history: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    model: Any | None = None


def predict_probs(keras: Any, model: Any, x: np.ndarray, batch: int = PREDICT_BATCH) -> np.ndarray:
    """The model's outputs for ``x``, called eagerly batch by batch: unlike ``model.predict`` this traces
    no new function for each model (about 0.1 s a trial saved on small validation sets)."""
    parts = [
        keras.ops.convert_to_numpy(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), dtype=np.float32)


def training_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration's ``training`` section with the defaults filled in."""
    given = config.get("training") or {}
    if not isinstance(given, Mapping):
        raise TrainingConfigError(f"training must be a mapping, got {type(given).__name__}")
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in TRAINING_DEFAULTS.items()}
    merged.update({k: v for k, v in given.items() if v is not None or k not in TRAINING_DEFAULTS})
    return merged


def _positive_int(training: Mapping[str, Any], key: str) -> int:
    value = training.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1:
        raise TrainingConfigError(f"training.{key} must be an integer >= 1, got {value!r}")
    return int(value)


def _early_stopping(keras: Any, spec: Any) -> Any | None:
    if not spec:
        return None
    if not isinstance(spec, Mapping):
        raise TrainingConfigError(f"training.early_stopping must be a mapping, got {spec!r}")
    kwargs = {"monitor": "val_loss", **spec}
    try:
        return keras.callbacks.EarlyStopping(**kwargs)
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"training.early_stopping: {exc}") from None


def _fmt(row: Mapping[str, Any]) -> str:
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", *EPOCH_SCORES)
    return " ".join(f"{k}={row[k]:.4f}" for k in keys if isinstance(row.get(k), float))


def _make_epoch_callback(
    keras: Any,
    *,
    history: list[dict[str, Any]],
    epochs: int,
    on_epoch: EpochHook | None,
    should_stop: Callable[[], bool] | None,
    scores_on: tuple[np.ndarray, np.ndarray, int] | None,
    label: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> Any:
    """The callback that records the history, calls the hooks and stops training when asked."""

    class EpochReporter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.interrupted = False
            self._t0 = 0.0

        def _stop(self) -> None:
            self.interrupted = True
            self.model.stop_training = True

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if should_stop is not None and should_stop():
                self._stop()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            row: dict[str, Any] = {"epoch": epoch + 1}
            for key, value in (logs or {}).items():
                if isinstance(value, int | float | np.floating) or hasattr(value, "__float__"):
                    row[key] = float(value)
            if scores_on is not None:
                x_val, y_val, n_classes = scores_on
                pred = np.argmax(predict_probs(keras, self.model, x_val), axis=1)
                row.update(
                    {
                        k: v
                        for k, v in scalar_scores(y_val, pred, n_classes, "val").items()
                        if k != "val_accuracy"
                    }
                )
            row["time"] = round(time.perf_counter() - self._t0, 4)
            history.append(row)
            log.info("trial %s epoch %d/%d %s (%.2fs)", label, epoch + 1, epochs, _fmt(row), row["time"])
            stop = on_epoch(list(history)) if on_epoch is not None else False
            if stop or (should_stop is not None and should_stop()):
                self._stop()

    return EpochReporter()


@dataclass
class _Compiled:
    """A configuration's compiled model and the training settings it was compiled with."""

    model: Any
    training: dict[str, Any]
    epochs: int
    batch_size: int
    loss: str
    loss_fn: Any
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]


def _compiled(
    keras: Any,
    config: Mapping[str, Any],
    dataset: Dataset,
    *,
    seed: int,
    evaluate_test: bool,
    timings: dict[str, float],
) -> _Compiled:
    """Seed, read the training section, build and compile the model of ``config`` (no training).
    Raises :class:`~hyperhive.workers.model_builder.ModelBuildError` or :class:`TrainingConfigError`."""
    t = time.perf_counter()
    keras.utils.set_random_seed(int(seed))
    training = training_section(config)
    epochs = _positive_int(training, "epochs")
    batch_size = _positive_int(training, "batch_size")
    split = training.get("validation_split") or DEFAULT_VALIDATION_SPLIT
    (x_tr, y_tr), val = dataset.train_val(float(split))
    if evaluate_test and dataset.test is None:
        raise TrainingConfigError(f"dataset {dataset.source} has no test split to evaluate (dataset.test)")
    loss = loss_name(training)
    loss_fn = build_loss(keras, loss)
    model = build_model(
        config.get("model"),
        dataset.input_shape,
        dataset.n_classes,
        augmentation=training.get("augmentation"),
        seed=int(seed),
    )
    timings["build"] = time.perf_counter() - t
    t = time.perf_counter()
    steps = math.ceil(len(y_tr) / batch_size)
    optimizer = build_optimizer(keras, training.get("optimizer"), epochs * steps)
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    except (TypeError, ValueError) as exc:
        raise TrainingConfigError(f"the model cannot be compiled: {exc}") from None
    timings["compile"] = time.perf_counter() - t
    return _Compiled(model, training, epochs, batch_size, loss, loss_fn, (x_tr, y_tr), val)


def config_builds(config: Mapping[str, Any], dataset: Dataset, *, seed: int, evaluate_test: bool) -> bool:
    """Whether the model of ``config`` can be built and compiled for ``dataset`` (nothing is trained):
    the worker's test of whether a build error came from the sampled values or from the document."""
    keras = import_keras()
    try:
        _compiled(keras, config, dataset, seed=seed, evaluate_test=evaluate_test, timings={})
    except (ModelBuildError, TrainingConfigError):
        return False
    finally:
        release_trial_memory()
    return True


def run_keras_trial(
    config: Mapping[str, Any],
    dataset: Dataset,
    *,
    seed: int,
    objective_metric: str = "val_accuracy",
    evaluate_test: bool = False,
    on_epoch: EpochHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    label: str = "-",
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    keep_model: bool = False,
) -> TrainingOutcome:
    """Train and evaluate the model of ``config`` on ``dataset`` (see the module docstring).

    Raises :class:`~hyperhive.workers.model_builder.ModelBuildError`,
    :class:`~hyperhive.workers.optimizers.TrainingConfigError` or
    :class:`~hyperhive.workers.datasets.DatasetError` for a
    configuration that cannot be trained; anything Keras raises while training propagates.
    """
    outcome = TrainingOutcome(history=[])
    try:
        _train(
            outcome,
            config,
            dataset,
            seed=seed,
            objective_metric=objective_metric,
            evaluate_test=evaluate_test,
            on_epoch=on_epoch,
            should_stop=should_stop,
            label=label,
            log=log or _log,
            keep_model=keep_model,
        )
    finally:
        if not keep_model:
            t = time.perf_counter()
            release_trial_memory()
            outcome.timings["release"] = time.perf_counter() - t
    return outcome


def _train(
    outcome: TrainingOutcome,
    config: Mapping[str, Any],
    dataset: Dataset,
    *,
    seed: int,
    objective_metric: str,
    evaluate_test: bool,
    on_epoch: EpochHook | None,
    should_stop: Callable[[], bool] | None,
    label: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
    keep_model: bool,
) -> None:
    """The body of :func:`run_keras_trial`; every Keras object it makes dies with its frame."""
    keras = import_keras()
    timings = outcome.timings
    c = _compiled(keras, config, dataset, seed=seed, evaluate_test=evaluate_test, timings=timings)
    model, training, epochs, batch_size, loss, loss_fn = (
        c.model, c.training, c.epochs, c.batch_size, c.loss, c.loss_fn
    )  # fmt: skip
    (x_tr, y_tr), (x_val, y_val) = c.train, c.val
    n_classes = dataset.n_classes

    def targets(y: np.ndarray) -> np.ndarray:
        return y if sparse_labels(loss) else np.eye(n_classes, dtype=np.float32)[y]

    reporter = _make_epoch_callback(
        keras,
        history=outcome.history,
        epochs=epochs,
        on_epoch=on_epoch,
        should_stop=should_stop,
        scores_on=(x_val, y_val, n_classes) if objective_metric in EPOCH_SCORES else None,
        label=label,
        log=log,
    )
    callbacks = [reporter]
    stopper = _early_stopping(keras, training.get("early_stopping"))
    if stopper is not None:
        callbacks.append(stopper)
    t = time.perf_counter()
    model.fit(
        x_tr,
        targets(y_tr),
        validation_data=(x_val, targets(y_val)),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    timings["fit"] = time.perf_counter() - t
    outcome.info.update(
        params=int(model.count_params()), layers=layer_summary(model), dataset=dataset.describe()
    )
    if reporter.interrupted:
        outcome.stopped = True
        return

    t = time.perf_counter()

    def mean_loss(y: np.ndarray, probs: np.ndarray) -> float:
        return float(np.mean(keras.ops.convert_to_numpy(loss_fn(targets(y), probs))))

    probs = predict_probs(keras, model, x_val)
    metrics = split_metrics(y_val, probs, n_classes, "val", mean_loss, dataset.class_names)
    if evaluate_test and dataset.test is not None:
        x_te, y_te = dataset.test
        probs = predict_probs(keras, model, x_te)
        test = split_metrics(y_te, probs, n_classes, "test", mean_loss, dataset.class_names)
        notes = metrics.get("truncated_notes", []) + test.pop("truncated_notes", [])
        metrics.update(test)
        if notes:
            metrics["truncated_notes"] = notes
    last = outcome.history[-1] if outcome.history else {}
    metrics.update(
        train_loss=last.get("loss"),
        train_accuracy=last.get("accuracy"),
        params=outcome.info["params"],
        epochs=len(outcome.history),
        train_time=round(timings["fit"], 4),
    )
    outcome.metrics = metrics
    timings["evaluate"] = time.perf_counter() - t
    if keep_model:
        outcome.model = model
