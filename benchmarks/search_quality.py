"""Search quality on real trainings: how soon each optimiser finds the best configuration of a table.

The table (``benchmarks/data/digits_cnn_table.json``, built by ``benchmarks/build_quality_table.py``)
holds the per-epoch validation accuracy of every configuration of a grid of small Keras CNNs trained on
digits. Each search below runs on a space whose every point is a row of the table (:func:`document`:
filters, kernel size, dropout, an optional dense layer, and the optimizer with its learning rate, a
conditional choice) and its objective is a lookup of the row's last-epoch validation accuracy
(:func:`table_objective`, a function objective a real worker can run too, with ``benchmarks/`` on
``sys.path``). Each search runs ``--trials`` trials, once per seed, and the table reports per optimiser:

- the median (over seeds) of the best accuracy among the first 25, 50 and 100 trials (by trial number,
  i.e. the first N suggestions: with several workers, suggestions made while earlier trials were still
  running);
- how many seeds found the table's optimum (a configuration with the table's highest accuracy) within
  those trials.

The optimisers: random search (hyperopt's ``rand.suggest``), hyperopt's ``tpe.suggest`` through
``fmin`` in process, Optuna's ``TPESampler`` (its defaults, and with ``constant_liar``, in process,
sequential), and Hyperhive with 1, 2 and 4 workers. Hyperhive runs on the real store (a SQLite file) and
the real claim path (``Store.claim`` -> the engine's suggestion -> ``Store.report``), with workers
simulated on a virtual clock: each worker claims a trial, "trains" it for the time the table recorded
for that configuration, reports it, and claims again, so with 2 or 4 workers every claim is made while
the other workers' trials are running, exactly as through the service (the engine sees them as running
trials with their sampled values).

With ``--through-service`` the table also has the rows ``service-1``, ``service-2`` and ``service-4``
(``--service-workers`` picks the counts): Hyperhive as a user runs it. Per worker count, one
``hyperhive serve --no-auth`` on a fresh SQLite file and that many ``hyperhive worker --cpu`` processes
(:func:`real_path.stack`, started once and warmed up), with ``--allow-objective quality_objective`` and
``benchmarks/`` on their ``PYTHONPATH``; per seed, the search is submitted over REST with the objective
``quality_objective:table_objective`` (the same lookup, which also sleeps the row's recorded training
seconds times ``--time-scale``, default 0.01, so that trials stay in flight in proportion to their
training time), waited for until the API says ``completed``, and its trials are read back over the API
(value, configuration, and the store's ``started_at``/``finished_at`` stamps, from which
``dup-running`` counts the trials claimed while another trial of the same configuration was running;
the progress line on stderr also gives how many other trials were running at a claim, about N - 1 when
every worker was busy).
Their ``s/seed`` includes starting the server and workers. ``--before`` cannot apply to them (it patches
this process's engine only).

Run: ``nice .venv/bin/python benchmarks/search_quality.py`` (``--seeds 20 --trials 100``; ``--quick``
for a smoke run; ``--only hyperhive-2`` etc. for some rows; ``--algorithm '{"type": "tpe", ...}'`` sets
Hyperhive's algorithm section, e.g. to compare options; ``--before`` runs Hyperhive's engine without
:class:`~hyperhive.tpe_parallel.ParallelTPE`; with ``--algorithm '{"type": "tpe", "n_startup_trials": 20,
"gamma": 0.25}'`` that is the engine as it was before issue 11 item 3; ``--through-service
--service-workers 2 --seeds 5 --trials 50`` adds Hyperhive through the service with 2 workers).

Measured (2026-12-01, the shared 2-core machine, 40 seeds, 100 trials; optimum hits by 25/50/100
trials): random 4/10/17, hyperopt's fmin 3/7/13, Optuna's TPE 4/15/21; Hyperhive before: 1 worker
4/10/16, 2 workers 4/12/20 (14 % of claims got a configuration still running), 4 workers 6/16/20;
after: 1 worker 10/25/36, 2 workers 15/23/33, 4 workers 13/18/34 (no claim got a running
configuration).

Through the service (same machine, ``--seeds 10 --trials 50 --through-service --service-workers 1 2 4``,
time scale 0.01; optimum hits by 25/50): service-1 5/6, service-2 3/6, service-4 2/4 (1 % of claims got a
running configuration: workers suggest outside the store's write lock, so two claims at once can pick
the same one), next to the same run's in-process hyperhive-1 5/6, hyperhive-2 3/6, hyperhive-4 4/7 and
Optuna's TPE 1/2; other trials running at a claim: 0.00 / 0.98 / 2.87 (median over seeds).
With ``--seeds 20 --trials 100 --through-service --service-workers 2`` (hits by 25/50/100): service-2
11/14/18 (0 % running configurations, 0.98 other trials running at a claim, 9.1 s per seed), in-process
hyperhive-2 11/13/17, hyperhive-1 7/16/19, Optuna's TPE 3/6/10, random 2/5/11, hyperopt's fmin 2/3/5.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

TABLE = Path(__file__).resolve().parent / "data" / "digits_cnn_table.json"
CHECKPOINTS = (25, 50, 100)
_table_path = [TABLE]  # --table replaces it


# ------------------------------------------------------------------------------------------ the table
@cache
def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def load_table() -> dict[str, Any]:
    return _load(_table_path[0])


def row_key(filters: int, kernel_size: int, dropout: float, dense: int, optimizer: str, lr_index: int) -> str:
    return f"{filters}/{kernel_size}/{float(dropout)}/{dense}/{optimizer}/{lr_index}"


def table_rows() -> dict[str, tuple[float, float]]:
    """``row_key -> (last-epoch val_accuracy, training seconds)``."""
    return _rows(_table_path[0])


@cache
def _rows(path: Path) -> dict[str, tuple[float, float]]:
    rows = {}
    for r in _load(path)["rows"]:
        key = row_key(r["filters"], r["kernel_size"], r["dropout"], r["dense"], r["optimizer"], r["lr_index"])
        rows[key] = (float(r["val_accuracy"][-1]), float(r["seconds"]))
    return rows


def params_key(params: dict[str, Any]) -> str:
    opt = params["optimizer"]
    return row_key(
        params["filters"],
        params["kernel_size"],
        params["dropout"],
        params["dense"],
        opt["name"],
        opt["lr_index"],
    )


def lookup(params: dict[str, Any]) -> tuple[float, float]:
    """The table row of a Hyperhive configuration's ``params``: ``(val_accuracy, seconds)``."""
    return table_rows()[params_key(params)]


def row_lookup(table: Path, params: dict[str, Any]) -> tuple[float, float]:
    """:func:`lookup` in the table at ``table`` (what :mod:`quality_objective` runs in a worker)."""
    return _rows(table)[params_key(params)]


def table_objective(params: dict[str, Any]) -> dict[str, float]:
    """The function objective of :func:`document`: the row's last-epoch validation accuracy."""
    return {"val_accuracy": lookup(params)[0]}


def _choice(values: list[Any]) -> dict[str, Any]:
    return {"choice": values}


def grid() -> dict[str, list[Any]]:
    return dict(load_table()["grid"])


def document(seed: int, max_trials: int, algorithm: Any = "tpe") -> dict[str, Any]:
    """The search document: every point a row of the table."""
    g = grid()
    return {
        "name": "digits-cnn-table",
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": seed,
        "objective": {"function": "search_quality:table_objective", "metric": "val_accuracy", "mode": "max"},
        "params": {
            "filters": _choice(g["filters"]),
            "kernel_size": _choice(g["kernel_size"]),
            "dropout": _choice(g["dropout"]),
            "dense": _choice(g["dense"]),
            "optimizer": {
                "choice": {
                    name: {"name": name, "lr_index": _choice(g["lr_index"])} for name in g["optimizer"]
                }
            },
        },
    }


# ------------------------------------------------------------------------------------------ optimisers
Point = tuple[float, str]
Run = Callable[[int, int], list[Point]]
"""``(seed, n_trials) -> (accuracy, row key) of each trial in suggestion order``."""


def run_hyperopt(algo: Any) -> Run:
    def run(seed: int, n: int) -> list[Point]:
        from hyperopt import Trials, fmin

        from hyperhive.search_spaces import validate

        spec = validate(document(seed, n))
        values: list[Point] = []

        def objective(config: dict[str, Any]) -> float:
            acc = lookup(config["params"])[0]
            values.append((acc, params_key(config["params"])))
            return -acc

        fmin(
            objective,
            spec.space,
            algo=algo,
            max_evals=n,
            trials=Trials(),
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
        return values

    return run


def run_optuna(**sampler_options: Any) -> Run:
    def run(seed: int, n: int) -> list[Point]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        g = grid()
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, **sampler_options)
        )
        values: list[Point] = []

        def objective(trial: Any) -> float:
            opt = trial.suggest_categorical("optimizer", g["optimizer"])
            params = {
                "filters": trial.suggest_categorical("filters", g["filters"]),
                "kernel_size": trial.suggest_categorical("kernel_size", g["kernel_size"]),
                "dropout": trial.suggest_categorical("dropout", g["dropout"]),
                "dense": trial.suggest_categorical("dense", g["dense"]),
                "optimizer": {
                    "name": opt,
                    "lr_index": trial.suggest_categorical(f"lr_index_{opt}", g["lr_index"]),
                },
            }
            acc = lookup(params)[0]
            values.append((acc, params_key(params)))
            return acc

        study.optimize(objective, n_trials=n)
        return values

    return run


def run_hyperhive(workers: int, algorithm: Any = "tpe") -> Run:
    """Hyperhive's store and engine, ``workers`` simulated workers on a virtual clock (see the module
    docstring). Each run uses a fresh SQLite file."""

    def run(seed: int, n: int) -> list[Point]:
        from hyperhive.models import TrialResult
        from hyperhive.search_spaces import validate
        from hyperhive.store import open_store

        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{tmp}/quality.db")
            try:
                search = store.create_search(validate(document(seed, n, algorithm)))
                values: dict[int, Point] = {}
                dups = 0
                running: list[tuple[float, int, Any, float]] = []  # (finish time, worker, trial, acc)
                now = 0.0

                def claim(worker: int) -> None:
                    trial = store.claim(f"w{worker}", 3600, search_id=search.id)
                    if trial is None:
                        return
                    if trial.config is None:
                        raise RuntimeError(f"trial {trial.number} has no configuration: {trial.error}")
                    acc, seconds = lookup(trial.config["params"])
                    key = params_key(trial.config["params"])
                    nonlocal dups
                    dups += any(params_key(t.config["params"]) == key for _, _, t, _ in running)
                    heapq.heappush(running, (now + seconds, worker, trial, acc))

                for w in range(workers):
                    claim(w)
                while running:
                    now, worker, trial, acc = heapq.heappop(running)
                    store.report(trial.id, trial.lease_token, TrialResult.done({"val_accuracy": acc}))
                    values[trial.number] = (acc, params_key(trial.config["params"]))
                    claim(worker)
            finally:
                store.close()
        DUPLICATES[run].append(dups)
        return [values[k] for k in sorted(values)]

    DUPLICATES[run] = []
    return run


Batch = Callable[[list[int], int], list[list[Point]]]
"""``(seeds, n_trials) -> per seed, (accuracy, row key) of each trial by number``."""

SERVICE_OBJECTIVE = "quality_objective:table_objective"
HERE = Path(__file__).resolve().parent


def run_service(workers: int, algorithm: Any = "tpe", time_scale: float = 0.01) -> Batch:
    """Hyperhive through the service (see the module docstring): one ``hyperhive serve`` and ``workers``
    ``hyperhive worker --cpu`` processes (:func:`real_path.stack`) for all seeds, one search per seed
    submitted over REST and waited for, its trials read back over the API."""

    def run(seeds: list[int], n: int) -> list[list[Point]]:
        import real_path
        from quality_objective import TABLE_ENV, TIME_SCALE_ENV

        env = {"PYTHONPATH": str(HERE), TABLE_ENV: str(_table_path[0]), TIME_SCALE_ENV: repr(time_scale)}
        longest = max(seconds for _, seconds in table_rows().values())
        out = []
        with real_path.stack(workers, ["--allow-objective", "quality_objective"], env) as s:
            for seed in seeds:
                doc = document(seed, n, algorithm)
                doc["name"] = f"digits-cnn-table-seed-{seed}"
                doc["objective"] = {**doc["objective"], "function": SERVICE_OBJECTIVE}
                search_id = s.submit(doc)
                try:
                    s.wait_done(search_id, timeout=300 + n * (1 + longest * time_scale))
                except (RuntimeError, TimeoutError) as exc:
                    search = s.client.get_search(search_id)
                    log = (s.folder / "log.txt").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{exc} ({search.get('error')}); the log ends:\n{log}") from None
                trials = s.trials(search_id)
                points, dups = service_points(trials)
                out.append(points)
                DUPLICATES[run].append(dups)
                IN_FLIGHT[run].append(in_flight(trials))
        return out

    DUPLICATES[run] = []
    IN_FLIGHT[run] = []
    return run


def in_flight(trials: list[dict[str, Any]]) -> float:
    """The mean number of other trials running when a trial was claimed (by the store's stamps): about
    ``workers - 1`` when every worker was busy."""
    starts = [t["started_at"] for t in trials]
    return statistics.fmean(
        sum(u["started_at"] < start < u["finished_at"] for u in trials) for start in starts
    )


def service_points(trials: list[dict[str, Any]]) -> tuple[list[Point], int]:
    """A finished search's trials as the API lists them: ``(val_accuracy, row key)`` by trial number,
    and how many trials were claimed while another trial of the same configuration was running (by
    the store's ``started_at``/``finished_at`` stamps, written by the workers)."""
    for t in trials:
        if t["state"] != "done":
            raise RuntimeError(f"trial {t['number']} ended {t['state']}: {t['error']}")
    trials = sorted(trials, key=lambda t: t["number"])
    keys = [params_key(t["config"]["params"]) for t in trials]
    points = [(float(t["value"]), key) for t, key in zip(trials, keys, strict=True)]
    dups = sum(
        any(
            j != i and keys[j] == key and u["started_at"] < t["started_at"] < u["finished_at"]
            for j, u in enumerate(trials)
        )
        for i, (t, key) in enumerate(zip(trials, keys, strict=True))
    )
    return points, dups


DUPLICATES: dict[Callable[..., Any], list[int]] = {}
"""Per Hyperhive run, per seed: how many claims got the configuration of a trial still running."""
IN_FLIGHT: dict[Callable[..., Any], list[float]] = {}
"""Per service run, per seed: :func:`in_flight`."""


def optimisers(algorithm: Any) -> dict[str, Run]:
    from hyperopt import rand, tpe

    return {
        "random": run_hyperopt(rand.suggest),
        "hyperopt-tpe": run_hyperopt(tpe.suggest),
        "optuna-tpe": run_optuna(),
        "hyperhive-1": run_hyperhive(1, algorithm),
        "hyperhive-2": run_hyperhive(2, algorithm),
        "hyperhive-4": run_hyperhive(4, algorithm),
    }


# ------------------------------------------------------------------------------------------ the report
def summarise(runs: list[list[Point]], optimum: float, checkpoints: tuple[int, ...]) -> list[str]:
    cells = []
    for k in checkpoints:
        bests = [max(acc for acc, _ in v[:k]) for v in runs]
        hits = sum(b >= optimum for b in bests)
        cells.append(f"{statistics.median(bests):.4f}  {hits:>2}/{len(runs)}")
    cut = checkpoints[1] if len(checkpoints) > 1 else checkpoints[0]
    distinct = statistics.median(len({key for _, key in v[:cut]}) for v in runs)
    cells.append(f"{distinct:.0f}")
    return cells


def _per_seed(run: Run) -> Batch:
    def batch(seeds: list[int], n: int) -> list[list[Point]]:
        return [run(seed, n) for seed in seeds]

    if run in DUPLICATES:
        DUPLICATES[batch] = DUPLICATES[run]
    return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from here")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 50 trials")
    parser.add_argument("--only", nargs="*", default=None, help="rows to run (names as printed)")
    parser.add_argument("--algorithm", type=json.loads, default='"tpe"', help="Hyperhive's algorithm section")
    parser.add_argument(
        "--before",
        action="store_true",
        help="Hyperhive's engine without ParallelTPE (hyperopt's handling of trials in flight; "
        "add --algorithm for the old defaults)",
    )
    parser.add_argument(
        "--through-service",
        action="store_true",
        help="also the rows service-N: Hyperhive through hyperhive serve and N hyperhive worker processes",
    )
    parser.add_argument(
        "--service-workers",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="worker counts of the service rows (default 1 2 4)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        help="service rows: each trial sleeps its recorded training seconds times this (default 0.01)",
    )
    parser.add_argument("--table", type=Path, default=TABLE, help="the table of trainings")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-seed values here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.trials = 3, 50
    if args.before and args.through_service:
        parser.error("--before patches this process's engine only; the service rows run the installed one")
    if not 0 <= args.time_scale <= 1:
        parser.error(f"--time-scale must be within 0..1, got {args.time_scale:g}")
    if any(not 1 <= w <= 16 for w in args.service_workers):
        parser.error("--service-workers: each count must be within 1..16")
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    _table_path[0] = args.table.resolve()
    if args.before:
        import hyperhive.engine

        hyperhive.engine.ParallelTPE = lambda tpe: tpe  # type: ignore[assignment,misc]

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    batches: dict[str, Batch] = {name: _per_seed(run) for name, run in optimisers(args.algorithm).items()}
    if args.through_service:
        for w in args.service_workers:
            batches[f"service-{w}"] = run_service(w, args.algorithm, args.time_scale)
    unknown = sorted(set(args.only or ()) - set(batches))
    if unknown:
        hint = " (the service-N rows need --through-service)" if any("service" in u for u in unknown) else ""
        parser.error(f"--only: no row named {', '.join(unknown)}; rows: {', '.join(batches)}{hint}")
    rows = table_rows()
    accs = [a for a, _ in rows.values()]
    optimum = max(accs)
    n_opt = sum(a >= optimum for a in accs)
    checkpoints = tuple(k for k in CHECKPOINTS if k <= args.trials) or (args.trials,)
    print(
        f"table: {len(rows)} configurations, optimum val_accuracy {optimum:.4f} ({n_opt} configurations), "
        f"median {statistics.median(accs):.4f}; {args.seeds} seeds from {args.first_seed}, "
        f"{args.trials} trials; "
        f"Hyperhive algorithm: {json.dumps(args.algorithm)}"
        + (" (before: no ParallelTPE)" if args.before else "")
        + (
            f"; service-N: hyperhive serve + N worker processes, trials sleep {args.time_scale:g} x "
            "their training seconds"
            if args.through_service
            else ""
        )
    )
    cut = checkpoints[1] if len(checkpoints) > 1 else checkpoints[0]
    header = [
        "optimiser",
        *[f"best@{k}  hits" for k in checkpoints],
        f"distinct@{cut}",
        "dup-running",
        "s/seed",
    ]
    lines = []
    dump: dict[str, list[list[Point]]] = {}
    for name, run in batches.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        runs = run(seeds, args.trials)
        elapsed = (time.perf_counter() - t0) / args.seeds
        dump[name] = runs
        dups = DUPLICATES.get(run)
        dup_cell = f"{sum(dups) / (args.seeds * args.trials):.0%}" if dups is not None else "-"
        lines.append([name, *summarise(runs, optimum, checkpoints), dup_cell, f"{elapsed:.1f}"])
        busy = IN_FLIGHT.get(run)
        note = (
            f" (other trials running at a claim: median over seeds {statistics.median(busy):.2f})"
            if busy
            else ""
        )
        print("  done:", name, lines[-1][1:], note, file=sys.stderr, flush=True)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    for line in [header, ["-" * w for w in widths], *lines]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))
    if args.json:
        args.json.write_text(json.dumps({"optimum": optimum, "runs": dump}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
