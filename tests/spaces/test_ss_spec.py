"""validate/load: top-level fields, defaults, and the structural checks of each section."""

from __future__ import annotations

import json
from typing import Any

import pytest
from spacekit import assert_error, errors_of, function_doc, model_doc

from hyperhive.search_spaces import MAX_TRIALS_LIMIT, SearchSpec, SpecError, load, validate


def test_function_search_defaults() -> None:
    spec = validate(function_doc({"x": {"uniform": [0, 1]}}))
    assert isinstance(spec, SearchSpec)
    assert spec.algorithm == "tpe"
    assert spec.algorithm_options == {
        "n_startup_trials": 5,  # max_trials 10: default_startup_trials
        "gamma": 0.5,
        "n_ei_candidates": 24,
        "prior_weight": 1.0,
    }
    assert (spec.objective_metric, spec.objective_mode) == ("loss", "min")
    assert spec.objective_function == "hyperhive.demo_objectives:quadratic"
    assert spec.seed is None and spec.description is None and spec.dataset is None
    assert (spec.max_consecutive_failures, spec.max_retries) == (5, 2)
    assert spec.model is None and spec.training is None
    assert spec.params == {"x": {"uniform": [0, 1]}}


@pytest.mark.parametrize(
    ("max_trials", "startup"), [(1, 5), (20, 5), (50, 5), (100, 10), (150, 15), (200, 20), (10_000, 20)]
)
def test_tpe_start_up_defaults_to_a_tenth_of_the_budget(max_trials: int, startup: int) -> None:
    for algorithm in (None, "tpe", {"type": "tpe", "gamma": 0.3}):
        doc = function_doc({"x": {"uniform": [0, 1]}}, max_trials=max_trials)
        if algorithm is not None:
            doc["algorithm"] = algorithm
        assert validate(doc).algorithm_options["n_startup_trials"] == startup, algorithm


def test_a_set_tpe_start_up_is_kept() -> None:
    for n in (0, 20, 300):
        doc = function_doc(
            {"x": {"uniform": [0, 1]}}, max_trials=100, algorithm={"type": "tpe", "n_startup_trials": n}
        )
        assert validate(doc).algorithm_options["n_startup_trials"] == n


def test_model_search_defaults() -> None:
    spec = validate(model_doc())
    assert (spec.objective_metric, spec.objective_mode) == ("val_accuracy", "max")
    assert spec.objective_function is None
    assert spec.dataset == {"name": "digits"}


@pytest.mark.parametrize(
    ("metric", "mode"),
    [("val_loss", "min"), ("val_AUC", "max"), ("precision", "max"), ("val_f1_score", "max"), ("mae", "min")],
)
def test_objective_mode_follows_the_metric(metric: str, mode: str) -> None:
    # a function search may report any metric name (a Keras search's names are checked: test_ss_keras_args)
    objective = {"function": "hyperhive.demo_objectives:quadratic", "metric": metric}
    spec = validate(function_doc({"x": 1}, objective=objective))
    assert spec.objective_mode == mode
    objective["mode"] = "min"
    assert validate(function_doc({"x": 1}, objective=objective)).objective_mode == "min"


@pytest.mark.parametrize(("metric", "mode"), [("val_loss", "min"), ("val_f1", "max"), ("train_time", "min")])
def test_keras_objective_mode_follows_the_metric(metric: str, mode: str) -> None:
    assert validate(model_doc(objective={"metric": metric})).objective_mode == mode


def test_document_round_trips() -> None:
    doc = model_doc(
        training={"epochs": {"uniformint": [1, 3]}},
        description="d",
        seed=3,
        algorithm={"type": "anneal", "shrink_coef": 0.2},
        max_retries=0,
        max_consecutive_failures=1,
    )
    spec = validate(doc)
    assert spec.to_document() == doc
    assert validate(json.loads(json.dumps(spec.to_document()))) == spec
    assert spec.algorithm_options == {"avg_best_idx": 2.0, "shrink_coef": 0.2}
    copy = spec.to_document()
    copy["name"] = "changed"
    assert spec.document["name"] == "m"
    assert spec.space is spec.space


def test_load_accepts_text_and_mappings() -> None:
    doc = function_doc({"x": {"uniform": [0, 1]}})
    assert load(json.dumps(doc)) == load(doc) == load(json.dumps(doc).encode(), "application/json")
    with pytest.raises(SpecError):
        load("name: [")


def test_algorithms() -> None:
    assert validate(model_doc(algorithm="random")).algorithm_options == {}
    spec = validate(model_doc(algorithm={"type": "tpe", "gamma": 0.25, "n_startup_trials": 0}))
    assert spec.algorithm_options["gamma"] == 0.25 and spec.algorithm_options["n_startup_trials"] == 0
    assert validate(model_doc(algorithm="anneal")).algorithm_options == {
        "avg_best_idx": 2.0,
        "shrink_coef": 0.1,
    }


@pytest.mark.parametrize(
    ("extra", "loc", "fragment"),
    [
        ({"colour": "red"}, "colour", "unknown key; expected one of algorithm, dataset"),
        ({"name": ""}, "name", "must be a name"),
        ({"name": "-x"}, "name", "must be a name"),
        ({"name": "a b"}, "name", "must be a name"),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"name": 3}, "name", "got 3"),
        ({"max_trials": 0}, "max_trials", "must be an integer >= 1 and <= 100000, got 0"),
        ({"max_trials": MAX_TRIALS_LIMIT + 1}, "max_trials", "<= 100000"),
        ({"max_trials": 2.0}, "max_trials", "got 2.0"),
        ({"max_trials": True}, "max_trials", "got true"),
        ({"max_trials": {"choice": [1, 2]}}, "max_trials", "a choice distribution (only model"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"seed": 2**31}, "seed", "<= 2.14748e+09"),
        ({"description": 5}, "description", "must be a string"),
        ({"max_consecutive_failures": 0}, "max_consecutive_failures", ">= 1"),
        ({"max_retries": -1}, "max_retries", ">= 0"),
        (
            {"algorithm": "bayes"},
            "algorithm",
            "unknown algorithm 'bayes'; expected one of anneal, random, tpe",
        ),
        (
            {"algorithm": {"type": "tpe", "gama": 0.1}},
            "algorithm.gama",
            "unknown option for tpe; expected one of",
        ),
        ({"algorithm": {"type": "random", "gamma": 0.1}}, "algorithm.gamma", "random takes no options"),
        ({"algorithm": {"type": "tpe", "gamma": 1}}, "algorithm.gamma", "< 1"),
        ({"algorithm": {"type": "tpe", "n_ei_candidates": 0}}, "algorithm.n_ei_candidates", ">= 1"),
        ({"algorithm": {"type": "tpe", "prior_weight": 0}}, "algorithm.prior_weight", "> 0"),
        ({"algorithm": {"type": "anneal", "avg_best_idx": -1}}, "algorithm.avg_best_idx", "> 0"),
        ({"algorithm": {"gamma": 0.1}}, "algorithm", "needs a 'type'"),
        ({"algorithm": {"type": "grid"}}, "algorithm.type", "unknown algorithm 'grid'"),
        ({"algorithm": 3}, "algorithm", "unknown algorithm 3"),
        ({"objective": {"metric": "val_loss", "goal": "min"}}, "objective.goal", "unknown key"),
        ({"objective": {"mode": "minimise"}}, "objective.mode", "must be one of max, min"),
        ({"objective": {"metric": "val loss"}}, "objective.metric", "must be a metric name"),
        ({"objective": "val_loss"}, "objective", "must be a mapping"),
    ],
)
def test_top_level_errors(extra: dict[str, Any], loc: str, fragment: str) -> None:
    assert_error(model_doc(**extra), loc, fragment)


def test_missing_required_keys() -> None:
    errors = errors_of({"model": {"layers": [{"type": "Flatten"}]}, "dataset": {"name": "digits"}})
    assert errors == {"name": "required", "max_trials": "required"}


def test_a_search_needs_a_model_or_a_function() -> None:
    assert_error({"name": "a", "max_trials": 1}, "<document>", "needs either model")
    assert_error({"name": "a", "max_trials": 1, "params": {"x": 1}}, "<document>", "needs either model")
    assert_error(
        {"name": "a", "max_trials": 1, "objective": {"function": "m:f"}},
        "params",
        "required when objective.function",
    )
    assert_error(
        model_doc(objective={"function": "m:f"}), "objective.function", "cannot be combined with model"
    )
    doc = model_doc()
    del doc["dataset"]
    defaulted = validate(doc)
    assert defaulted.dataset == {"name": "digits"}, "digits is the embedded default dataset"
    assert defaulted.to_document()["dataset"] == {"name": "digits"}, "and the stored document says so"
    assert_error(function_doc({"x": 1}, training={"epochs": 1}), "training", "only used with model")
    assert_error(function_doc({"x": 1}, dataset={"name": "digits"}), "dataset", "only used with model")
    assert_error(function_doc([1, 2]), "params", "must be a mapping")


@pytest.mark.parametrize(
    "function",
    ["module:func", "pkg.mod:run", "a.b_1:c", "A1.b2:Fn_3"],
)
def test_good_function_names(function: str) -> None:
    assert validate(function_doc({"x": 1}, objective={"function": function})).objective_function == function


@pytest.mark.parametrize(
    "function",
    [
        "module",
        "mod:",
        ":f",
        "a.b:c()",
        "os.system('x'):f",
        "a..b:c",
        "1a:f",
        "a:b:c",
        # one name after the colon: no attribute chain into what the module imports, no private names
        "pkg.mod:Class.method",
        "pkg.mod:subprocess.run",
        "pkg:_private",
        "_a.b_1:c",
        "pkg.__main__:main",
    ],
)
def test_bad_function_names(function: str) -> None:
    assert_error(
        function_doc({"x": 1}, objective={"function": function}), "objective.function", "package.module"
    )


LAYER_CASES = [
    (
        {"type": "Lambda", "function": "x"},
        "model.layers[0].type",
        "layer type 'Lambda' is not allowed; allowed: ",
    ),
    ({"type": "conv2d"}, "model.layers[0].type", "did you mean 'Conv2D'?"),
    ({"type": 3}, "model.layers[0].type", "must be a layer type name, got 3"),
    ({"units": 3}, "model.layers[0]", "a layer needs a 'type'"),
    (
        {"type": "Dense", "kernel_initializer": {"class_name": "X", "module": "os"}},
        "model.layers[0].kernel_initializer",
        "got a mapping",
    ),
    ({"type": "Dense", "units": {"unifrom": [1, 2]}}, "model.layers[0].units", "did you mean 'uniform'?"),
    ({"type": "Dense", "bad-name": 1}, "model.layers[0].bad-name", "not a valid argument name"),
    ({"type": {"choice": ["MaxPooling2D", "Lambda"]}}, "model.layers[0].type[1]", "'Lambda' is not allowed"),
    (
        {"type": {"choice": ["Conv2D", "ResidualBlock"]}},
        "model.layers[0].type[1]",
        "cannot be one of a choice",
    ),
    ({"type": {"uniform": [0, 1]}}, "model.layers[0].type", "must be a layer type name or a choice"),
    ({"type": "ResidualBlock"}, "model.layers[0].filters", "required"),
    (
        {"type": "ResidualBlock", "filters": 8, "units": 3},
        "model.layers[0].units",
        "unknown argument for ResidualBlock; it takes activation, batch_norm, filters",
    ),
    ({"type": "ResidualBlock", "filters": 0}, "model.layers[0].filters", ">= 1"),
    ({"type": "ResidualBlock", "filters": {"uniform": [8, 16]}}, "model.layers[0].filters", "gives floats"),
    (
        {"type": "ResidualBlock", "filters": 8, "batch_norm": "yes"},
        "model.layers[0].batch_norm",
        "true or false",
    ),
    ({"type": "InceptionBlock", "filters_1x1": 4}, "model.layers[0].filters_pool", "required"),
    ("Dense", "model.layers[0]", "must be a layer {type: ..., ...}"),
    ({"uniform": [0, 1]}, "model.layers[0]", "got a uniform distribution"),
    (
        {"choice": [{"type": "Dense", "units": 4}, {"type": "Nope"}]},
        "model.layers[0][1].type",
        "'Nope' is not allowed",
    ),
    ({"choice": [None, 3]}, "model.layers[0][1]", "must be a layer"),
    ({"choice": [None, [{"type": "Dense"}, {"type": "Nope"}]]}, "model.layers[0][1][1].type", "not allowed"),
    ({"choice": {"a": None, "b": [{"type": "Nope"}]}}, "model.layers[0].b[0].type", "not allowed"),
    (None, "model.layers[0]", "null is only allowed as a choice option"),
    ([{"type": "Dense"}, {"kind": "x"}], "model.layers[0][1]", "a layer needs a 'type'"),
]


@pytest.mark.parametrize(("layer", "loc", "fragment"), LAYER_CASES)
def test_layer_errors(layer: Any, loc: str, fragment: str) -> None:
    assert_error(model_doc([layer]), loc, fragment)


def test_good_layers() -> None:
    layers = [
        {
            "type": "Conv2D",
            "filters": 8,
            "kernel_size": [3, 3],
            "padding": "same",
            "use_bias": False,
            "name": None,
        },
        {"type": {"choice": ["MaxPooling2D", "AveragePooling2D"]}, "pool_size": 2},
        [{"type": "BatchNormalization"}, {"type": "ReLU"}],
        {"pchoice": [[0.5, None], [0.5, {"type": "Dropout", "rate": {"uniform": [0, 0.5]}}]]},
        {
            "type": "ResidualBlock",
            "filters": {"choice": [8, 16]},
            "kernel_size": 3,
            "strides": 1,
            "name": "res1",
        },
        {
            "type": "InceptionBlock",
            "filters_1x1": 4,
            "filters_3x3_reduce": 4,
            "filters_3x3": {"quniform": [4, 16, 4]},
            "filters_5x5_reduce": 2,
            "filters_5x5": 4,
            "filters_pool": 4,
            "batch_norm": True,
        },
        {"literal": {"type": "Reshape", "target_shape": [-1]}},
        {"type": "GlobalAveragePooling2D"},
    ]
    validate(model_doc(layers, training={}))


def test_model_section_errors() -> None:
    assert_error(model_doc() | {"model": []}, "model", "must be a mapping with a 'layers' list")
    assert_error(model_doc() | {"model": {"layers": []}}, "model.layers", "needs at least one layer")
    assert_error(model_doc() | {"model": {}}, "model.layers", "required")
    assert_error(
        model_doc() | {"model": {"layers": {"type": "Dense"}}}, "model.layers", "must be a list of layers"
    )
    assert_error(
        model_doc() | {"model": {"layers": [{"type": "Flatten"}], "input_shape": [8, 8]}},
        "model.input_shape",
        "unknown key; expected one of layers, name",
    )


TRAINING_CASES = [
    ({"epoch": 3}, "training.epoch", "unknown key; expected one of augmentation, batch_size"),
    ({"epochs": 0}, "training.epochs", "must be an integer >= 1, got 0"),
    ({"epochs": "3"}, "training.epochs", "got '3'"),
    ({"epochs": {"uniform": [1, 5]}}, "training.epochs", "gives floats"),
    ({"epochs": {"uniformint": [0, 5]}}, "training.epochs", "uniformint [0, 5] can give 0"),
    ({"epochs": {"qnormal": [5, 1, 1]}}, "training.epochs", "can give any negative value"),
    ({"epochs": {"choice": [1, 0]}}, "training.epochs[1]", ">= 1, got 0"),
    ({"batch_size": {"choice": [32, 64.5]}}, "training.batch_size[1]", "got 64.5"),
    ({"validation_split": 1}, "training.validation_split", "must be a number > 0 and < 1"),
    ({"validation_split": {"uniform": [0, 0.3]}}, "training.validation_split", "can give 0"),
    ({"loss": 3}, "training.loss", "must be a loss name, got 3"),
    ({"optimizer": "Adam"}, "training.optimizer", "write {type: Adam}"),
    (
        {"optimizer": {"type": "Adamm"}},
        "training.optimizer.type",
        "optimizer type 'Adamm' is not allowed; allowed: Adadelta",
    ),
    ({"optimizer": {"learning_rate": 0.1}}, "training.optimizer", "optimizer needs a 'type'"),
    (
        {"optimizer": {"type": {"choice": ["Adam", "SGD"]}}},
        "training.optimizer.type",
        "must be a fixed optimizer type",
    ),
    ({"optimizer": {"type": "Adam", "learning_rate": 0}}, "training.optimizer.learning_rate", "> 0"),
    (
        {"optimizer": {"type": "Adam", "learning_rate": {"uniform": [0, 0.1]}}},
        "training.optimizer.learning_rate",
        "can give 0",
    ),
    (
        {"optimizer": {"type": "Adam", "learning_rate": {"normal": [0.01, 0.001]}}},
        "training.optimizer.learning_rate",
        "can give any negative value",
    ),
    (
        {"optimizer": {"type": "Adam", "learning_rate": {"type": "Cosine"}}},
        "training.optimizer.learning_rate.type",
        "learning-rate schedule type 'Cosine' is not allowed",
    ),
    ({"optimizer": {"type": "Adam", "beta_1": {"x": 1}}}, "training.optimizer.beta_1", "got a mapping"),
    (
        {"optimizer": {"choice": [{"type": "Adam"}, {"type": "Bad"}]}},
        "training.optimizer[1].type",
        "not allowed",
    ),
    (
        {"optimizer": {"choice": {"a": {"type": "Adam"}, "b": "SGD"}}},
        "training.optimizer.b",
        "must be an optimizer",
    ),
    ({"early_stopping": {"patience": -1}}, "training.early_stopping.patience", ">= 0"),
    ({"early_stopping": {"mode": "up"}}, "training.early_stopping.mode", "one of auto, max, min"),
    (
        {"early_stopping": {"restore_best_weights": 1}},
        "training.early_stopping.restore_best_weights",
        "true or false",
    ),
    ({"early_stopping": {"min_delta": -0.1}}, "training.early_stopping.min_delta", ">= 0"),
    ({"early_stopping": {"wait": 3}}, "training.early_stopping.wait", "unknown key"),
    ({"early_stopping": 3}, "training.early_stopping", "must be a mapping or null"),
    ({"augmentation": {"flip": "diagonal"}}, "training.augmentation.flip", "horizontal"),
    ({"augmentation": {"rotation": 2}}, "training.augmentation.rotation", "<= 1"),
    ({"augmentation": {"zoom": {"uniform": [-0.1, 0.2]}}}, "training.augmentation.zoom", "can give -0.1"),
    ({"augmentation": {"shear": 0.1}}, "training.augmentation.shear", "unknown key"),
    ({"pruning": {"type": "hyperband"}}, "training.pruning.type", "one of median, none"),
    ({"pruning": {"warmup_epochs": -1}}, "training.pruning.warmup_epochs", ">= 0"),
    ({"pruning": {"min_trials": 0}}, "training.pruning.min_trials", ">= 1"),
    ({"pruning": {"min_trials": {"choice": [1, 2]}}}, "training.pruning.min_trials", "must be a fixed value"),
    ([], "training", "must be a mapping"),
]


@pytest.mark.parametrize(("training", "loc", "fragment"), TRAINING_CASES)
def test_training_errors(training: Any, loc: str, fragment: str) -> None:
    assert_error(model_doc(training=training), loc, fragment)


def test_good_training() -> None:
    training = {
        "epochs": {"choice": [1, 2, {"uniformint": [3, 5]}]},
        "batch_size": {"qloguniform": [16, 256, 16]},
        "optimizer": {
            "choice": {
                "adam": {
                    "type": "Adam",
                    "learning_rate": {"lognormal": [-7, 1]},
                    "amsgrad": {"choice": [True, False]},
                },
                "sgd": {
                    "type": "SGD",
                    "learning_rate": {
                        "choice": [
                            0.01,
                            {"type": "CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 1000},
                            {
                                "type": "PiecewiseConstantDecay",
                                "boundaries": [100, 200],
                                "values": [0.1, 0.01, 0.001],
                            },
                        ]
                    },
                    "momentum": {"uniform": [0, 0.99]},
                    "nesterov": True,
                },
            }
        },
        "loss": "categorical_crossentropy",
        "early_stopping": {
            "monitor": "val_loss",
            "patience": {"choice": [1, 2]},
            "min_delta": 0,
            "mode": "auto",
            "restore_best_weights": True,
        },
        "augmentation": {
            "flip": None,
            "rotation": {"uniform": [0, 0.2]},
            "translation": 0.1,
            "zoom": None,
            "contrast": 0,
        },
        "validation_split": {"uniform": [0.1, 0.3]},
        "pruning": {"type": "median", "warmup_epochs": 1, "min_trials": 5},
    }
    spec = validate(model_doc(training=training))
    for seed in range(20):
        config = spec.sample(seed)["training"]
        assert isinstance(config["epochs"], int) and isinstance(config["batch_size"], int)
    validate(model_doc(training={"early_stopping": None, "augmentation": None, "pruning": None}))


DATASET_CASES = [
    ({"name": "imagenet"}, "dataset.name", "must be one of cifar10, cifar100, digits, fashion_mnist, mnist"),
    ({}, "dataset", "needs exactly one of name, path, folder, upload"),
    (
        {"name": "digits", "path": "a.npz"},
        "dataset",
        "give only one of name, path, folder, upload; got name, path",
    ),
    ({"path": "data.csv"}, "dataset.path", "a path to a .npz file"),
    ({"folder": ""}, "dataset.folder", "must be a folder path"),
    ({"upload": "../x"}, "dataset.upload", "must be an upload id"),
    ({"name": "digits", "image_size": [8, 8]}, "dataset.image_size", "only used with folder or upload"),
    ({"folder": "imgs", "image_size": [8]}, "dataset.image_size", "must be [height, width]"),
    ({"folder": "imgs", "image_size": [0, 8]}, "dataset.image_size[0]", ">= 1"),
    ({"name": "digits", "subset": 0}, "dataset.subset", ">= 1"),
    ({"name": "digits", "subset": {"choice": [10, 20]}}, "dataset.subset", "a choice distribution"),
    ({"name": "digits", "test": "yes"}, "dataset.test", "true or false"),
    ({"name": "digits", "split": 0.2}, "dataset.split", "unknown key"),
    ("digits", "dataset", "must be a mapping"),
]


@pytest.mark.parametrize(("dataset", "loc", "fragment"), DATASET_CASES)
def test_dataset_errors(dataset: Any, loc: str, fragment: str) -> None:
    assert_error(model_doc(dataset=dataset), loc, fragment)


def test_good_datasets() -> None:
    for dataset in (
        {"name": "cifar10", "subset": 500, "test": True},
        {"path": "/data/x.npz"},
        {"folder": "/data/imgs", "image_size": [32, 32]},
        {"upload": "a1b2c3", "image_size": [28, 28]},
    ):
        assert validate(model_doc(dataset=dataset)).dataset == dataset


def test_all_errors_are_reported_at_once() -> None:
    doc = {
        "name": "bad name",
        "max_trials": 0,
        "colour": "red",
        "algorithm": {"type": "tpe", "gamma": 2},
        "dataset": {"name": "imagenet"},
        "model": {"layers": [{"type": "Lambda"}, {"type": "Dropout", "rate": {"uniform": [0.5, 0.1]}}]},
        "training": {"epochs": 0, "optimizer": {"type": "Adamm"}},
    }
    with pytest.raises(SpecError) as info:
        validate(doc)
    locs = {e.loc for e in info.value.errors}
    assert locs == {
        "name",
        "max_trials",
        "colour",
        "algorithm.gamma",
        "dataset.name",
        "model.layers[0].type",
        "model.layers[1].rate",
        "training.epochs",
        "training.optimizer.type",
    }
    text = str(info.value)
    assert text.count("\n") == len(info.value.errors) - 1
    assert "model.layers[1].rate: uniform needs low < high, got [0.5, 0.1]" in text.splitlines()
    assert info.value.as_dicts()[0].keys() == {"loc", "msg"}


def test_null_sections_count_as_absent() -> None:
    spec = validate(model_doc(training=None, params=None, objective=None, algorithm=None, seed=None))
    assert spec.training is None and spec.params is None
    assert set(spec.space) == {"model"}


def test_params_may_go_with_a_model() -> None:
    spec = validate(model_doc(params={"extra": {"uniform": [0, 1]}}))
    assert "params.extra" in spec.parameter_labels


@pytest.mark.parametrize(
    ("layer", "loc", "fragment"),
    [
        ({"type": "Dense", "units": 0}, "model.layers[0].units", ">= 1"),
        ({"type": "Conv2D", "filters": {"uniform": [8, 16]}}, "model.layers[0].filters", "gives floats"),
        ({"type": "Dropout", "rate": 1.0}, "model.layers[0].rate", "< 1"),
        ({"type": "Dropout", "rate": {"uniform": [0.5, 1.5]}}, "model.layers[0].rate", "can give 1.5"),
        ({"type": "Conv2D", "kernel_size": [3, 0]}, "model.layers[0].kernel_size[1]", ">= 1"),
        ({"type": "Conv2D", "kernel_size": []}, "model.layers[0].kernel_size", "a list of them"),
        ({"type": "MaxPooling2D", "pool_size": 1.5}, "model.layers[0].pool_size", "got 1.5"),
        ({"type": "Dense", "activation": 3}, "model.layers[0].activation", "an activation name"),
    ],
)
def test_known_layer_arguments(layer: Any, loc: str, fragment: str) -> None:
    assert_error(model_doc([layer]), loc, fragment)


def test_error_count_is_capped() -> None:
    from hyperhive.search_spaces.errors import MAX_ERRORS

    layers = [{"type": "Dense", "units": 0} for _ in range(MAX_ERRORS + 30)]
    with pytest.raises(SpecError) as info:
        validate(model_doc(layers))
    errors = info.value.errors
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1].loc == "<document>" and errors[-1].msg == "30 more errors not shown"
