"""Issue 8, item 3: search options that turn one claim into minutes of CPU or gigabytes are refused.

Every limit of search_spaces/limits.py is tried through ``POST /api/searches`` on the real app over a real
SQLite store: 422 naming the path and the limit, every problem at once, nothing stored. The engine also
refuses a stored document that went round the API (written straight into the SQLite file).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from servicekit import bearer, function_yaml, make_client

from hyperhive.engine import make_algorithm
from hyperhive.search_spaces import SpecError, validate
from hyperhive.search_spaces.limits import (
    ALGORITHM_MAXIMA,
    LAYER_ARGUMENT_MAXIMA,
    MAX_CHOICE_OPTIONS,
    MAX_CONFIG_BYTES,
    MAX_IMAGE_SIDE,
    MAX_LAYERS,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    TRAINING_MAXIMA,
)
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hh.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(db)
    yield s
    s.close()


@pytest.fixture
def api(tmp_path: Path, db: Path, store: SQLiteStore) -> Any:
    settings = Settings(store=f"sqlite:///{db}", home=tmp_path / "home")  # type: ignore[call-arg]
    client = make_client(settings, store)
    _, secret = store.create_token("root", admin=True)  # admin: folder datasets pass the owner check
    client.headers.update(bearer(secret))
    return client


def keras_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "big",
        "max_trials": 10,
        "dataset": {"name": "digits"},
        "model": {"layers": [{"type": "Dense", "units": 32}]},
    }
    doc.update(changes)
    return doc


def layers(*items: Any) -> dict[str, Any]:
    return {"layers": list(items)}


def submit(api: Any, doc: dict[str, Any]) -> Any:
    return api.post("/api/searches", json=doc)


UNITS = LAYER_ARGUMENT_MAXIMA["units"]
FILTERS = LAYER_ARGUMENT_MAXIMA["filters"]
KERNEL = LAYER_ARGUMENT_MAXIMA["kernel_size"]
EI = ALGORITHM_MAXIMA["tpe"]["n_ei_candidates"]
EPOCHS = TRAINING_MAXIMA["epochs"]

CASES = [
    # algorithm options
    (
        keras_doc(algorithm={"type": "tpe", "n_ei_candidates": 10**6}),
        "algorithm.n_ei_candidates",
        f"{EI:g}",
    ),
    (
        keras_doc(algorithm={"type": "tpe", "n_startup_trials": 10**7}),
        "algorithm.n_startup_trials",
        f"{ALGORITHM_MAXIMA['tpe']['n_startup_trials']:g}",
    ),
    (keras_doc(algorithm={"type": "tpe", "prior_weight": 1e9}), "algorithm.prior_weight", "100"),
    (keras_doc(algorithm={"type": "anneal", "avg_best_idx": 1e12}), "algorithm.avg_best_idx", "1000"),
    (keras_doc(algorithm={"type": "anneal", "shrink_coef": 1e6}), "algorithm.shrink_coef", "10"),
    (
        keras_doc(algorithm={"type": "tpe", "linear_forgetting": 10**9}),
        "algorithm.linear_forgetting",
        "unknown",
    ),
    # layer sizes: constants, distributions, choice options, lists, blocks, nested choices
    (keras_doc(model=layers({"type": "Dense", "units": 10**9})), "model.layers[0].units", f"{UNITS}"),
    (
        keras_doc(model=layers({"type": "Dense", "units": {"randint": [1, 10**9]}})),
        "model.layers[0].units",
        f"{UNITS}",
    ),
    (
        keras_doc(model=layers({"type": "Dense", "units": {"quniform": [16, UNITS + 500, 1000]}})),
        "model.layers[0].units",
        f"{UNITS}",
    ),
    (
        keras_doc(model=layers({"type": "Dense", "units": {"qloguniform": [16, UNITS * 4, 16]}})),
        "model.layers[0].units",
        f"{UNITS}",
    ),
    (
        keras_doc(model=layers({"type": "Conv2D", "filters": {"choice": [32, 10**6]}, "kernel_size": 3})),
        "model.layers[0].filters[1]",
        f"{FILTERS}",
    ),
    (
        keras_doc(model=layers({"type": "Conv2D", "filters": 8, "kernel_size": [3, 999]})),
        "model.layers[0].kernel_size[1]",
        f"{KERNEL}",
    ),
    (
        keras_doc(model=layers({"type": "MaxPooling2D", "pool_size": 10**5})),
        "model.layers[0].pool_size",
        f"{LAYER_ARGUMENT_MAXIMA['pool_size']}",
    ),
    (
        keras_doc(model=layers({"type": "Conv2D", "filters": 8, "kernel_size": 3, "strides": 10**4})),
        "model.layers[0].strides",
        f"{LAYER_ARGUMENT_MAXIMA['strides']}",
    ),
    (
        keras_doc(model=layers({"type": "UpSampling2D", "size": 4096})),
        "model.layers[0].size",
        f"{LAYER_ARGUMENT_MAXIMA['size']}",
    ),
    (
        keras_doc(model=layers({"type": "ZeroPadding2D", "padding": [[1, 100000], [1, 1]]})),
        "model.layers[0].padding[0][1]",
        f"{LAYER_ARGUMENT_MAXIMA['padding']}",
    ),
    (
        keras_doc(model=layers({"type": "ResidualBlock", "filters": 10**6})),
        "model.layers[0].filters",
        f"{FILTERS}",
    ),
    (
        keras_doc(
            model=layers(
                {
                    "type": "InceptionBlock",
                    "filters_1x1": 8,
                    "filters_3x3_reduce": 8,
                    "filters_3x3": 8,
                    "filters_5x5_reduce": 8,
                    "filters_5x5": {"uniformint": [8, 10**7]},
                    "filters_pool": 8,
                }
            )
        ),
        "model.layers[0].filters_5x5",
        f"{FILTERS}",
    ),
    (
        keras_doc(
            model=layers(
                {
                    "choice": {
                        "small": {"type": "Dense", "units": 8},
                        "huge": [{"type": "Dense", "units": 10**8}],
                    }
                }
            )
        ),
        "model.layers[0].huge[0].units",
        f"{UNITS}",
    ),
    # number of layers, nested in lists and choices, blocks counted as the layers they build
    (
        keras_doc(model=layers(*[{"type": "Dense", "units": 8}] * (MAX_LAYERS + 1))),
        "model.layers",
        f"{MAX_LAYERS + 1} layers; the limit is {MAX_LAYERS}",
    ),
    (
        keras_doc(
            model=layers(
                {"choice": [None, [{"type": "ResidualBlock", "filters": 8}] * (MAX_LAYERS // 10 + 1)]}
            )
        ),
        "model.layers",
        f"the limit is {MAX_LAYERS}",
    ),
    # training
    (keras_doc(training={"epochs": 10**6}), "training.epochs", f"{EPOCHS}"),
    (keras_doc(training={"epochs": {"uniformint": [1, 10**5]}}), "training.epochs", f"{EPOCHS}"),
    (
        keras_doc(training={"batch_size": {"choice": [32, 10**7]}}),
        "training.batch_size[1]",
        f"{TRAINING_MAXIMA['batch_size']}",
    ),
    (
        keras_doc(training={"early_stopping": {"patience": 10**7}}),
        "training.early_stopping.patience",
        f"{TRAINING_MAXIMA['early_stopping.patience']}",
    ),
    # dataset
    (
        keras_doc(dataset={"folder": "/data/imgs", "image_size": [MAX_IMAGE_SIDE * 2, 32]}),
        "dataset.image_size[0]",
        f"{MAX_IMAGE_SIDE}",
    ),
    # constant payload
    (
        keras_doc(model=layers({"type": "Dense", "units": 8, "name": "n" * (MAX_STRING_CHARS + 1)})),
        "model.layers[0].name",
        f"the limit is {MAX_STRING_CHARS}",
    ),
    (
        keras_doc(params={"table": {"literal": list(range(MAX_LIST_ITEMS + 1))}}),
        "params.table",
        f"the limit is {MAX_LIST_ITEMS}",
    ),
    (
        keras_doc(params={"pick": {"choice": list(range(MAX_CHOICE_OPTIONS + 1))}}),
        "params.pick",
        f"the limit is {MAX_CHOICE_OPTIONS}",
    ),
    (
        keras_doc(params={f"s{i}": "x" * MAX_STRING_CHARS for i in range(MAX_CONFIG_BYTES // 1000 + 2)}),
        "<document>",
        f"the limit is {MAX_CONFIG_BYTES}",
    ),
]


@pytest.mark.parametrize(("doc", "path", "needle"), CASES, ids=[c[1] for c in CASES])
def test_each_limit_is_refused_with_its_path(
    api: Any, store: SQLiteStore, doc: dict[str, Any], path: str, needle: str
) -> None:
    r = submit(api, doc)
    assert r.status_code == 422, r.text
    items = r.json()["detail"]
    by_path = {i["path"]: i["msg"] for i in items}
    assert path in by_path, items
    assert needle in by_path[path], items
    assert store.count_searches() == 0


def test_every_limit_is_reported_at_once(api: Any, store: SQLiteStore) -> None:
    doc = keras_doc(
        algorithm={"type": "tpe", "n_ei_candidates": 10**6},
        model=layers({"type": "Dense", "units": {"randint": [1, 10**9]}}, {"type": "Dense", "units": 10}),
        training={"epochs": 10**6, "batch_size": 10**6},
    )
    r = submit(api, doc)
    assert r.status_code == 422
    paths = {i["path"] for i in r.json()["detail"]}
    assert {
        "algorithm.n_ei_candidates",
        "model.layers[0].units",
        "training.epochs",
        "training.batch_size",
    } <= paths
    assert store.count_searches() == 0


def test_a_big_but_realistic_search_is_accepted(api: Any, store: SQLiteStore) -> None:
    """A VGG-like search with every value at a generous size is still accepted."""
    conv = {"type": "Conv2D", "kernel_size": {"choice": [3, 5]}, "padding": "same", "activation": "relu"}
    stages = []
    for filters in (64, 128, 256, 512, 512):
        stages += [{**conv, "filters": {"choice": [filters // 2, filters]}}] * 3
        stages.append({"type": "MaxPooling2D", "pool_size": 2, "strides": 2})
        stages.append({"choice": [None, {"type": "BatchNormalization"}]})
    blocks = [{"type": "ResidualBlock", "filters": {"quniform": [64, 512, 64]}, "kernel_size": 3}] * 6
    head = [
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": {"choice": [1024, 4096, UNITS]}, "activation": "relu"},
        {"type": "Dropout", "rate": {"uniform": [0.0, 0.6]}},
        {"choice": {"none": None, "extra": [{"type": "Dense", "units": {"uniformint": [256, 4096]}}]}},
    ]
    doc = keras_doc(
        max_trials=5000,
        algorithm={"type": "tpe", "n_ei_candidates": 256, "n_startup_trials": 200},
        model=layers(*stages, *blocks, *head),
        training={
            "epochs": {"uniformint": [20, 300]},
            "batch_size": {"choice": [64, 128, 256, 1024]},
            "early_stopping": {"patience": 30},
            "optimizer": {"type": "SGD", "learning_rate": {"loguniform": [1e-4, 0.3]}, "momentum": 0.9},
        },
    )
    r = submit(api, doc)
    assert r.status_code == 201, r.text
    assert store.count_searches() == 1


def test_the_engine_refuses_a_stored_document_beyond_the_limits(db: Path, store: SQLiteStore) -> None:
    """A document that went round the API (written straight into the store) never reaches hyperopt with
    n_EI_candidates beyond the cap: its trial fails with the reason, and the worker goes on."""
    search = store.create_search(validate(yaml.safe_load(function_yaml(3))), owner="alice")
    doc = dict(search.document, algorithm={"type": "tpe", "n_ei_candidates": 10**7})
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE searches SET document = ? WHERE id = ?", (json.dumps(doc), search.id))
    store.engine.forget(search.id)

    trial = store.claim("w-1", 30.0)
    assert trial is not None and trial.state == "failed"
    assert "n_ei_candidates" in (trial.error or "") and f"{EI:g}" in (trial.error or "")
    assert trial.vals is None and trial.config is None

    with pytest.raises(SpecError, match="n_ei_candidates"):
        validate(doc)
    with pytest.raises(ValueError, match="n_ei_candidates: must be at most"):
        make_algorithm("tpe", {"n_ei_candidates": 10**7})
    with pytest.raises(ValueError, match="avg_best_idx"):
        make_algorithm("anneal", {"avg_best_idx": 1e12, "shrink_coef": 0.1})


def test_the_readme_states_the_limits() -> None:
    """search_spaces/README.md says every number of limits.py (a limit changed in one place only fails)."""
    readme = (Path(__file__).resolve().parents[2] / "search_spaces" / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("  | ")]
    tables = [LAYER_ARGUMENT_MAXIMA, TRAINING_MAXIMA, *ALGORITHM_MAXIMA.values()]
    for table in tables:
        for key, value in table.items():
            shown = f"{value:,.0f}".replace(",", " ")
            name = "filters_*" if key.startswith("filters_") else key.split(".")[-1]
            assert any(name in line and shown in line for line in lines), (key, shown)
    for value in (MAX_LAYERS, MAX_IMAGE_SIDE, MAX_STRING_CHARS, MAX_LIST_ITEMS, MAX_CHOICE_OPTIONS):
        assert f"{value:,}".replace(",", " ") in readme, value
    assert f"{MAX_CONFIG_BYTES // 1024} KiB" in readme


def test_a_worker_refuses_a_configuration_beyond_the_limits(tmp_path: Path, store: SQLiteStore) -> None:
    """A configuration that went round the engine (an imported or hand-edited queued trial) is refused
    by the worker before it loads a dataset or builds a model."""
    import dataclasses

    from hyperhive.workers.execution import ExecutionContext, TrialControl, execute_trial

    search = store.create_search(validate(keras_doc()), owner="alice")
    trial = store.claim("w-1", 30.0)
    assert trial is not None and trial.state == "running"
    config = {
        "model": {"layers": [{"type": "Dense", "units": 10**9}, [{"type": "Conv2D", "filters": 10**6}]]},
        "training": {"epochs": 10**7, "batch_size": 32},
    }
    ctx = ExecutionContext(store=store, worker_id="w-1", allow_objective=[], data_dir=tmp_path / "data")
    result = execute_trial(dataclasses.replace(trial, config=config), search, ctx, TrialControl())
    assert result is not None and result.state == "failed"
    error = result.error or ""
    assert "beyond the search limits" in error and "Traceback" not in error
    for where in ("model.layers[0].units", "model.layers[1][0].filters", "training.epochs"):
        assert where in error, error
    assert not (tmp_path / "data").exists()  # nothing was downloaded or built
