"""Worker overhead: time per trial spent outside ``model.fit`` on the lecture's digits CNN.

"Outside fit" is everything a trial costs besides training: claim (sweep + suggestion + insert), reading
the search, dataset (cached after the first trial), building and compiling the model, the final
evaluation and metrics, releasing memory, and the report. Two ways of running trials:

1. one long-lived worker process (``Worker.work()``), ``--trials`` trials (default 20): the median and
   the first trial (which pays the Keras import and the dataset load);
2. a fresh ``hyperhive worker --max-trials 1`` process per trial, ``--fresh`` trials (default 5): the
   process's wall time minus its time in ``fit``.

Run: ``.venv/bin/python benchmarks/worker_overhead.py`` (``--quick`` for a smoke run), with the
``dev`` extra installed (``pip install -e '.[dev]'``). Goal: median
outside-fit time <= 0.5 s for the long-lived worker.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _stats import p95

from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore
from hyperhive.workers.daemon import Worker, WorkerOptions


def lecture_cnn(max_trials: int, epochs: int) -> dict[str, Any]:
    """The slide's CNN on digits, with the two searched values the benchmark varies."""
    return {
        "name": "bench-lecture-cnn",
        "algorithm": "random",
        "max_trials": max_trials,
        "seed": 1,
        "dataset": {"name": "digits"},
        "model": {
            "layers": [
                {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
                {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Dropout", "rate": {"uniform": [0.0, 0.5]}},
                {"type": "Flatten"},
                {"type": "Dense", "units": 128, "activation": "relu"},
                {"type": "Dropout", "rate": 0.5},
            ]
        },
        "training": {
            "epochs": epochs,
            "batch_size": 64,
            "optimizer": {"type": "Adam", "learning_rate": {"loguniform": [1e-4, 1e-2]}},
        },
    }


def long_lived(folder: Path, trials: int, epochs: int) -> dict[str, Any]:
    store = SQLiteStore(folder / "long.db")
    store.create_search(validate(lecture_cnn(trials, epochs)))
    worker = Worker(store, WorkerOptions(burst=True, data_dir=folder / "data", heartbeat_seconds=10))
    t0 = time.perf_counter()
    worker.work()
    wall = time.perf_counter() - t0
    rows = list(worker.timings)
    phases: dict[str, list[float]] = {}
    for t in store.list_trials(store.list_searches()[0].id):
        for key, value in t.info.get("timings", {}).items():
            phases.setdefault(key, []).append(float(value))
    store.close()
    return {"rows": rows, "phases": phases, "wall": wall}


def fresh_processes(folder: Path, trials: int, epochs: int) -> list[dict[str, float]]:
    store = SQLiteStore(folder / "fresh.db")
    search = store.create_search(validate(lecture_cnn(trials, epochs)))
    out = []
    for _ in range(trials):
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "hyperhive.cli", "worker", "--store", store.url, "--max-trials", "1"]
        subprocess.run([*cmd, "--cpu", "--log-level", "WARNING"], check=True, capture_output=True)
        wall = time.perf_counter() - t0
        done = [t for t in store.list_trials(search.id) if t.state == "done"]
        fit = float(max(done, key=lambda t: t.finished_at or 0).info["timings"]["fit"])
        out.append({"wall": wall, "fit": fit, "outside_fit": wall - fit})
    store.close()
    return out


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fresh", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 trials each, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.fresh, args.epochs = 3, 2, 1
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        long = long_lived(folder, args.trials, args.epochs)
        fresh = fresh_processes(folder, args.fresh, args.epochs)

    rows = long["rows"]
    first, rest = rows[0], rows[1:] or rows
    print(f"\nWorker overhead per trial, lecture CNN on digits, {args.epochs} epoch(s), batch 64 (seconds)\n")
    print(f"{'mode':<48} {'trials':>6} {'total':>8} {'fit':>8} {'outside fit':>12} {'outside p95':>12}")
    print("-" * 99)

    def line(label: str, n: int, total: float, fit: float, outside: float, tail: float | None = None) -> None:
        tail = outside if tail is None else tail
        print(f"{label:<48} {n:>6} {total:>8.3f} {fit:>8.3f} {outside:>12.3f} {tail:>12.3f}")

    total = [r["claim"] + r["run"] + r["report"] for r in rows]
    line(
        "long-lived worker, median of all",
        len(rows),
        med(total),
        med([r["fit"] for r in rows]),
        med([r["outside_fit"] for r in rows]),
        p95([r["outside_fit"] for r in rows]),
    )
    line("long-lived worker, first trial (imports, data)", 1, total[0], first["fit"], first["outside_fit"])
    line(
        "long-lived worker, median without the first",
        len(rest),
        med([r["claim"] + r["run"] + r["report"] for r in rest]),
        med([r["fit"] for r in rest]),
        med([r["outside_fit"] for r in rest]),
        p95([r["outside_fit"] for r in rest]),
    )
    line(
        "fresh process per trial, median",
        len(fresh),
        med([f["wall"] for f in fresh]),
        med([f["fit"] for f in fresh]),
        med([f["outside_fit"] for f in fresh]),
        p95([f["outside_fit"] for f in fresh]),
    )
    print("\nlong-lived worker, median per phase outside fit (s):")
    phases = long["phases"]
    parts = {
        "claim": med([r["claim"] for r in rows]),
        "report": med([r["report"] for r in rows]),
        **{k: med(v) for k, v in phases.items() if k not in ("fit", "total")},
    }
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in parts.items()))
    print(f"\nlong-lived worker wall time for {len(rows)} trials: {long['wall']:.1f} s")


if __name__ == "__main__":
    main()
