"""Build the table of real trainings that ``benchmarks/search_quality.py`` replays searches against.

Trains every configuration of a grid of small Keras CNNs on scikit-learn's digits (8x8, the worker's
``digits`` split: 60 % train, 20 % validation, :func:`hyperhive.workers.datasets.load_digits`) and stores
each configuration's per-epoch validation accuracy in ``benchmarks/data/digits_cnn_table.json``.

The model is the lecture CNN's shape (``search_spaces/examples/lecture-cnn.yaml``) made small:
Conv2D(filters, kernel) -> Conv2D(2 x filters, kernel) -> MaxPooling 2x2 -> Dropout(dropout) -> Flatten
-> [Dense(dense, relu) -> Dropout(dropout)] -> Dense(10, softmax), trained for ``EPOCHS`` epochs with
batch size ``BATCH_SIZE`` and one fixed seed per configuration (the table is deterministic up to
TensorFlow's CPU kernels). The grid (:data:`GRID`): filters, kernel size, dropout, an optional dense
layer, optimizer and learning rate (three per optimizer, around each one's usual default).

The run is resumable: finished rows are written after every few configurations and skipped when the
script runs again (rows outside the current grid are dropped). A full run trains 216 configurations;
on a shared 2-core machine it takes 20-40 minutes (5-10 s per configuration, most of it building and
tracing the model).

Run: ``nice .venv/bin/python benchmarks/build_quality_table.py`` (``--limit N`` trains only the first
``N`` configurations, e.g. to time a few; ``--out PATH`` writes elsewhere).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "data" / "digits_cnn_table.json"
EPOCHS = 4
BATCH_SIZE = 64
SEED = 0

# the optimizer's learning rates: three around each one's usual default
LEARNING_RATES = {
    "adam": [3e-4, 1e-3, 3e-3],
    "sgd": [1e-2, 3e-2, 1e-1],
    "rmsprop": [3e-4, 1e-3, 3e-3],
}
GRID: dict[str, list[Any]] = {
    "filters": [8, 16, 32],
    "kernel_size": [2, 3],
    "dropout": [0.0, 0.5],
    "dense": [0, 64],  # 0: no dense layer
    "optimizer": ["adam", "sgd", "rmsprop"],
    "lr_index": [0, 1, 2],  # which of LEARNING_RATES[optimizer]
}


def configs() -> list[dict[str, Any]]:
    """Every configuration of :data:`GRID`, in a fixed order."""
    keys = list(GRID)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]


def config_key(config: dict[str, Any]) -> str:
    return json.dumps({k: config[k] for k in GRID}, sort_keys=True)


def train(keras: Any, config: dict[str, Any], data: Any) -> list[float]:
    """Train one configuration; its validation accuracy after each epoch."""
    keras.utils.set_random_seed(SEED)
    (x_tr, y_tr), (x_val, y_val) = data.train, data.val
    layers = keras.layers
    k = config["kernel_size"]
    stack = [
        keras.Input(shape=x_tr.shape[1:]),
        layers.Conv2D(config["filters"], k, activation="relu", padding="same"),
        layers.Conv2D(2 * config["filters"], k, activation="relu", padding="same"),
        layers.MaxPooling2D(2),
        layers.Dropout(config["dropout"]),
        layers.Flatten(),
    ]
    if config["dense"]:
        stack += [layers.Dense(config["dense"], activation="relu"), layers.Dropout(config["dropout"])]
    stack.append(layers.Dense(10, activation="softmax"))
    model = keras.Sequential(stack)
    lr = LEARNING_RATES[config["optimizer"]][config["lr_index"]]
    optimizer = {
        "adam": keras.optimizers.Adam,
        "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
        "rmsprop": keras.optimizers.RMSprop,
    }[config["optimizer"]](learning_rate=lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_tr,
        y_tr,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        verbose=0,
    )
    keras.backend.clear_session()
    return [round(float(v), 4) for v in history.history["val_accuracy"]]


def load(path: Path) -> dict[str, Any]:
    if path.exists():
        table: dict[str, Any] = json.loads(path.read_text())
        if table.get("epochs") == EPOCHS and table.get("batch_size") == BATCH_SIZE:
            keys = {config_key(c) for c in configs()}
            table["rows"] = [r for r in table["rows"] if config_key(r) in keys]  # rows of this grid
            table["grid"] = GRID
            return table
    return {
        "what": "val_accuracy per epoch of small Keras CNNs on scikit-learn digits "
        "(benchmarks/build_quality_table.py)",
        "dataset": "digits (hyperhive.workers.datasets.load_digits: 60/20/20 split, seed 0)",
        "model": "Conv2D(f,k) Conv2D(2f,k) MaxPool2 Dropout(d) Flatten [Dense(u) Dropout(d)] Dense(10)",
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "seed": SEED,
        "grid": GRID,
        "learning_rates": LEARNING_RATES,
        "rows": [],
    }


def save(table: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rows = table["rows"]
    body = {k: v for k, v in table.items() if k != "rows"}
    text = json.dumps(body, indent=1)[:-2]
    text += ',\n "rows": [\n' + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n ]\n}\n"
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--limit", type=int, default=None, help="train only the first N configurations")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import keras

    from hyperhive.workers.datasets import load_digits

    data = load_digits()
    table = load(args.out)
    done = {config_key(r) for r in table["rows"]}
    todo = [c for c in configs() if config_key(c) not in done][: args.limit]
    print(f"{len(done)} rows already in {args.out}; training {len(todo)}", flush=True)
    started = time.perf_counter()
    for i, config in enumerate(todo, 1):
        t0 = time.perf_counter()
        acc = train(keras, config, data)
        table["rows"].append({**config, "val_accuracy": acc, "seconds": round(time.perf_counter() - t0, 2)})
        if i % 10 == 0 or i == len(todo):
            save(table, args.out)
            rate = (time.perf_counter() - started) / i
            print(f"{i}/{len(todo)}: {rate:.2f} s per config, last {config} -> {acc}", flush=True)
    save(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
