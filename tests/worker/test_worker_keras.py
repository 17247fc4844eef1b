"""Real Keras training on digits, in this process (Keras is imported once for the whole file)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner
from workerkit import (
    GOOD_TRAINING,
    TINY_CNN,
    ScriptedConfigs,
    StoreProxy,
    create_search,
    keras_doc,
    rss_mb,
    run_worker,
    worker_options,
)

from hyperhive import search_spaces
from hyperhive.cli import app
from hyperhive.models import TrialState
from hyperhive.search_spaces.keras_names import LR_SCHEDULES, OPTIMIZER_TYPES
from hyperhive.store import SQLiteStore
from hyperhive.workers.backend import import_keras
from hyperhive.workers.daemon import Worker
from hyperhive.workers.datasets import load_dataset
from hyperhive.workers.model_builder import ModelBuildError, build_model, layer_summary
from hyperhive.workers.optimizers import TrainingConfigError, build_optimizer
from hyperhive.workers.training import run_keras_trial

pytestmark = pytest.mark.slow
EXAMPLES = Path(search_spaces.__file__).parent / "examples"


class RecordingStore(StoreProxy):
    """Records the length of the history each heartbeat saved (and how many epochs it sent)."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__(store)
        self.saved: list[int] = []
        self.sent: list[int] = []

    def heartbeat(
        self, trial_id: str, token: str, lease: float = 60.0, history: Any = None, **kw: Any
    ) -> Any:
        if history is not None:
            self.saved.append(len(history))
        if kw.get("new_epochs"):
            self.saved.append(kw["from_epoch"] + len(kw["new_epochs"]))
            self.sent.append(len(kw["new_epochs"]))
        return self._store.heartbeat(trial_id, token, lease, history=history, **kw)


def test_lecture_cnn_search_end_to_end_then_retrain(store: SQLiteStore, tmp_path: Path) -> None:
    doc = search_spaces.parse_text((EXAMPLES / "lecture-cnn.yaml").read_text())
    doc.update(max_trials=2, seed=11)
    doc["training"]["epochs"] = 2
    search = create_search(store, doc)
    recording = RecordingStore(store)
    worker = Worker(recording, worker_options(tmp_path))  # type: ignore[arg-type]
    worker.work()

    s = store.get_search(search.id)
    assert (s.status, s.counts.done, s.counts.total) == ("completed", 2, 2)
    assert recording.saved == [1, 2] * 2  # history saved at every epoch, while running
    assert recording.sent == [1, 1] * 2  # each epoch sent once, not the whole history again
    trials = store.list_trials(search.id)
    assert s.best_value == max(t.value for t in trials)
    hashes = {t.info["dataset_sha256"] for t in trials}
    assert len(hashes) == 1 and len(hashes.pop()) == 64
    for t in trials:
        m = t.metrics
        assert t.value == m["val_accuracy"] and 0.0 <= m["val_accuracy"] <= 1.0
        for key in ("val_loss", "val_precision", "val_recall", "val_f1", "train_loss", "train_accuracy"):
            assert math.isfinite(m[key]), key
        assert (m["epochs"], len(t.history)) == (2, 2) and m["params"] > 0 and m["train_time"] > 0
        assert [row["epoch"] for row in t.history] == [1, 2]
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "time"} <= set(t.history[0])
        assert len(m["val_per_class"]["f1"]) == 10 and m["val_per_class"]["labels"][3] == "3"
        cm = np.array(m["val_confusion_matrix"])
        assert cm.shape == (10, 10) and cm.sum() == 359
        assert np.trace(cm) / cm.sum() == pytest.approx(m["val_accuracy"])
        assert "test_accuracy" not in m  # dataset.test not asked for
        assert t.info["seed"] == t.seed and t.info["versions"]["keras_backend"] == "tensorflow"
        assert t.info["layers"][:2] == ["Conv2D", "Conv2D"] and t.info["layers"][-1] == "Dense"
        assert {"build", "compile", "fit", "evaluate", "release"} <= set(t.info["timings"])

    best = store.best_trial(search.id)
    assert best is not None
    out = tmp_path / "best.keras"
    result = CliRunner().invoke(app, ["retrain", search.id, "--out", str(out), "--store", store.url])
    assert result.exit_code == 0, result.output
    assert "val_accuracy" in result.output and "model saved to" in result.output
    keras = import_keras()
    model = keras.saving.load_model(out)
    assert model.output_shape == (None, 10) and model.count_params() == best.metrics["params"]


def _sample_layers(example: str, seeds: range) -> list[list[Any]]:
    spec = search_spaces.load((EXAMPLES / example).read_text())
    return [spec.sample(seed)["model"]["layers"] for seed in seeds]


def test_conditional_and_swapped_layer_sets_build_different_models() -> None:
    with_block = without = None
    for layers in _sample_layers("conditional-block.yaml", range(40)):
        if layers[1] is None:
            without = without or layers
        else:
            with_block = with_block or layers
    assert with_block is not None and without is not None
    a = build_model({"layers": without}, (8, 8, 1), 10)
    b = build_model({"layers": with_block}, (8, 8, 1), 10)
    assert layer_summary(a) == ["Conv2D", "Flatten", "Dense", "Dense"]
    assert layer_summary(b) == ["Conv2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]

    kinds: dict[str, Any] = {}
    for layers in _sample_layers("architecture-swap.yaml", range(40)):
        model = build_model({"layers": layers}, (8, 8, 1), 10)
        names = layer_summary(model)
        kind = "resnet" if "Add" in names else "inception" if "Concatenate" in names else "vgg"
        kinds.setdefault(kind, (names, model.count_params()))
    assert set(kinds) == {"vgg", "resnet", "inception"}
    assert kinds["vgg"][0][:3] == ["Conv2D", "Conv2D", "MaxPooling2D"]
    assert len({params for _, params in kinds.values()}) == 3


def test_head_added_unless_written_and_blocks_checked() -> None:
    head = {"type": "Dense", "units": 10, "activation": "softmax"}
    model = build_model({"layers": [{"type": "Flatten"}, head]}, (8, 8, 1), 10)
    assert layer_summary(model) == ["Flatten", "Dense"]
    model = build_model([{"type": "Conv2D", "filters": 4.0, "kernel_size": [3.0, 3.0]}], (8, 8, 1), 3)
    assert layer_summary(model) == ["Conv2D", "Flatten", "Dense"] and model.output_shape == (None, 3)
    with pytest.raises(ModelBuildError, match="add Flatten or GlobalAveragePooling2D"):
        build_model([head], (8, 8, 1), 10)
    with pytest.raises(ModelBuildError, match=r"model.layers\[0\]: layer type 'Lambda' is not allowed"):
        build_model([{"type": "Lambda", "function": "print"}], (8, 8, 1), 10)
    with pytest.raises(
        ModelBuildError, match=r"model.layers\[0\] \(ResidualBlock\): argument 'filters' is required"
    ):
        build_model([{"type": "ResidualBlock"}], (8, 8, 1), 10)
    # errors name the layer by its path in the configuration, also inside a chosen set of layers
    nested = [
        {"type": "Conv2D", "filters": 2, "kernel_size": 3},
        None,
        [{"type": "Flatten"}, {"type": "Dense", "units": 3, "foo": 1}],
    ]
    with pytest.raises(ModelBuildError, match=r"^model\.layers\[2\]\[1\] \(Dense\): Unrecognized keyword"):
        build_model({"layers": nested}, (8, 8, 1), 10)
    with pytest.raises(ModelBuildError, match=r"^model\.layers\[1\]: must be a mapping"):
        build_model({"layers": [{"type": "Flatten"}, 3]}, (8, 8, 1), 10)
    with pytest.raises(ModelBuildError, match=r"argument 'kernel_regularizer' must be a plain value"):
        build_model([{"type": "Dense", "units": 3, "kernel_regularizer": {"class_name": "L2"}}], (4,), 2)


OPTIMIZER_ARGS: dict[str, dict[str, Any]] = {
    "SGD": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"learning_rate": 0.05, "epsilon": 1e-6},
    "RMSprop": {"learning_rate": 0.001, "rho": 0.8, "momentum": 0.1},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    "Adadelta": {"learning_rate": 1.0, "rho": 0.9},
    "AdamW": {"learning_rate": 0.001, "weight_decay": 0.01},
    "Nadam": {"learning_rate": 0.002},
    "Adamax": {"learning_rate": 0.002},
    "Lion": {"learning_rate": 1e-4},
    "Ftrl": {"learning_rate": 0.05},
}


def test_every_allowed_optimizer_is_covered() -> None:
    assert set(OPTIMIZER_ARGS) == set(OPTIMIZER_TYPES)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_ARGS))
def test_every_optimizer_builds_and_trains_one_step(name: str) -> None:
    keras = import_keras()
    spec = {"type": name, **OPTIMIZER_ARGS[name]}
    opt = build_optimizer(keras, spec, total_steps=1)
    assert type(opt).__name__ == name
    for key, value in OPTIMIZER_ARGS[name].items():
        got = getattr(opt, key)
        if isinstance(value, bool):
            assert got is value, key
        else:
            assert float(keras.ops.convert_to_numpy(got)) == pytest.approx(value), key
    data = load_dataset({"name": "digits", "subset": 64})
    config = {
        "model": {"layers": [{"type": "Flatten"}]},
        "training": {"epochs": 1, "batch_size": 64, "optimizer": spec},
    }
    out = run_keras_trial(config, data, seed=1)
    assert len(out.history) == 1 and math.isfinite(out.metrics["train_loss"])


SCHEDULE_ARGS: dict[str, dict[str, Any]] = {
    "CosineDecay": {"initial_learning_rate": 0.1},
    "ExponentialDecay": {"initial_learning_rate": 0.1, "decay_rate": 0.5},
    "InverseTimeDecay": {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 7},
    "PolynomialDecay": {"initial_learning_rate": 0.1, "end_learning_rate": 0.001},
    "PiecewiseConstantDecay": {"boundaries": [10], "values": [0.1, 0.01]},
}


def test_learning_rate_schedules() -> None:
    keras = import_keras()
    assert set(SCHEDULE_ARGS) == set(LR_SCHEDULES)
    for name, args in SCHEDULE_ARGS.items():
        opt = build_optimizer(
            keras, {"type": "SGD", "learning_rate": {"type": name, **args}}, total_steps=340
        )
        schedule = opt._learning_rate
        assert type(schedule).__name__ == name
        if hasattr(schedule, "decay_steps"):
            assert schedule.decay_steps == args.get("decay_steps", 340)
    with pytest.raises(TrainingConfigError, match=r"learning_rate.type 'Cyclic' is not allowed"):
        build_optimizer(keras, {"type": "SGD", "learning_rate": {"type": "Cyclic"}}, 1)
    with pytest.raises(TrainingConfigError, match=r"training.optimizer \(SGD\).*momentum"):
        build_optimizer(keras, {"type": "SGD", "momentum": 7}, 1)
    schedule = {"type": "CosineDecay", "initial_learning_rate": 0.02}
    training = {"epochs": 2, "batch_size": 64, "optimizer": {"type": "Adam", "learning_rate": schedule}}
    out = run_keras_trial(
        {"model": {"layers": TINY_CNN}, "training": training}, load_dataset("digits"), seed=3
    )
    assert len(out.history) == 2 and out.metrics["val_accuracy"] > 0.5


def test_median_pruning_stops_a_bad_trial(store: SQLiteStore, tmp_path: Path) -> None:
    training = {
        **GOOD_TRAINING,
        "epochs": 3,
        "pruning": {"type": "median", "warmup_epochs": 1, "min_trials": 2},
    }
    search = create_search(store, keras_doc(training=training, max_trials=3))
    good = {"model": {"layers": TINY_CNN}, "training": {**GOOD_TRAINING, "epochs": 3}}
    bad = {
        "model": {"layers": TINY_CNN},
        "training": {**GOOD_TRAINING, "epochs": 5, "optimizer": {"type": "SGD", "learning_rate": 1e-7}},
    }
    scripted = ScriptedConfigs(store, [good, good, bad])
    Worker(scripted, worker_options(tmp_path)).work()  # type: ignore[arg-type]
    s = store.get_search(search.id)
    assert (s.counts.done, s.counts.pruned, s.counts.total, s.status) == (2, 1, 3, "completed")
    pruned = store.list_trials(search.id, state="pruned")[0]
    assert len(pruned.history) == 2  # stopped at the first epoch after warm-up
    assert (
        pruned.value
        == pruned.history[-1]["val_accuracy"]
        < min(t.value for t in store.list_trials(search.id, state="done"))
    )


def test_a_model_that_fails_to_build_is_reported_and_the_worker_goes_on(
    store: SQLiteStore, tmp_path: Path
) -> None:
    search = create_search(store, keras_doc(max_trials=3))
    bogus = {
        "model": {"layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 3, "bogus": 1}]},
        "training": GOOD_TRAINING,
    }
    too_big = {
        "model": {
            "layers": [
                {"type": "Conv2D", "filters": 4, "kernel_size": 3},
                {"type": "Conv2D", "filters": 4, "kernel_size": 9},
            ]
        },
        "training": GOOD_TRAINING,
    }
    good = {"model": {"layers": TINY_CNN}, "training": GOOD_TRAINING}
    worker = Worker(ScriptedConfigs(store, [bogus, too_big, good]), worker_options(tmp_path))  # type: ignore[arg-type]
    worker.work()
    assert worker.trials_run == 3
    t0, t1, t2 = store.list_trials(search.id)
    assert t0.state == TrialState.FAILED
    assert t0.error == (
        "ModelBuildError: model.layers[0] (Conv2D): "
        "Unrecognized keyword arguments passed to Conv2D: {'bogus': 1}"
    )
    assert t1.state == TrialState.FAILED and t1.error.startswith(
        "ModelBuildError: model.layers[1] (Conv2D) on input of shape"
    )
    assert t2.state == TrialState.DONE


def test_augmentation_early_stopping_f1_objective_and_test_split(store: SQLiteStore, tmp_path: Path) -> None:
    training = {
        **GOOD_TRAINING,
        "epochs": 6,
        "augmentation": {
            "flip": "horizontal",
            "rotation": 0.05,
            "translation": 0.1,
            "zoom": 0.1,
            "contrast": 0.1,
        },
        "early_stopping": {"monitor": "val_loss", "patience": 0, "min_delta": 10.0},
    }
    doc = keras_doc(training=training, max_trials=1, dataset={"name": "digits", "test": True})
    doc["objective"] = {"metric": "val_f1"}
    search = create_search(store, doc)
    run_worker(store, tmp_path)
    (t,) = store.list_trials(search.id)
    assert t.state == TrialState.DONE, t.error
    assert t.metrics["epochs"] == len(t.history) == 2  # early stopping: no 10.0 improvement after epoch 1
    assert t.value == t.metrics["val_f1"] and all("val_f1" in row for row in t.history)
    assert t.info["layers"][:5] == [
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomContrast",
    ]
    assert np.array(t.metrics["test_confusion_matrix"]).sum() == 360 and "test_f1" in t.metrics


def test_memory_stays_flat_over_8_trials(store: SQLiteStore, tmp_path: Path) -> None:
    tiny = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"}]
    training = {"epochs": 1, "batch_size": 128, "optimizer": {"type": "Adam"}}
    search = create_search(store, keras_doc(layers=tiny, training=training, max_trials=8))
    run_worker(store, tmp_path, burst=False, max_trials=2)  # warm-up: imports, dataset, first traces
    before = rss_mb()
    run_worker(store, tmp_path, burst=False, max_trials=6)
    growth = rss_mb() - before
    assert store.get_search(search.id).counts.done == 8
    # Without releasing TensorFlow's custom-gradient registry entries each trial keeps ~4.5 MB (these 6
    # grow by ~29 MB); with it they grow by ~3 MB, most of it in the first trial after the warm-up.
    assert growth < 12, f"RSS grew {growth:.1f} MB over 6 trials"
