"""Core overhead: Hyperhive's store + engine against hyperopt's fmin and Optuna, in one run.

Prints five tables:
1. per-trial overhead (claim + suggest + report, trivial objective, 3 parameters), random and TPE;
2. throughput with 1 and 2 worker processes sharing one SQLite file, against Optuna with SQLite;
3. TPE ask latency at 100 / 1,000 / 3,000 finished trials against bare ``tpe.suggest`` on the same trials;
4. the real path (:mod:`real_path`): searches submitted over REST to ``hyperhive serve`` (SQLite file),
   run by 1 or 2 ``hyperhive worker --cpu`` processes on ``hyperhive.demo_objectives:quadratic``, done
   when the API says so; random search against Optuna in memory, Optuna + SQLite (1 and 2 processes) and
   hyperopt's fmin in-process;
5. the real path with TPE on the 5-parameter space (uniform, loguniform, 3-way choice, quniform,
   uniform) at 1,000 and 3,000 finished trials (the next trials' ms each), against Optuna's TPE in
   memory and hyperopt's ``tpe.suggest`` in-process on the same number of finished trials.

Run: ``.venv/bin/python benchmarks/core_overhead.py`` (``--quick`` for a smoke run of a few minutes;
``--part store`` or ``--part real`` for tables 1-3 or 4-5 only), with the ``dev`` extra installed
(``pip install -e '.[dev]'``). Numbers move by 2x on a shared machine: compare rows of the same run,
and read medians and ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hyperopt import STATUS_OK, Trials, fmin, hp, rand, tpe
from hyperopt.base import Domain

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store


def doc(algorithm: Any, max_trials: int, name: str = "bench") -> dict[str, Any]:
    return {
        "name": name,
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": 3,
        "objective": {
            "function": "hyperhive.demo_objectives:quadratic",
            "metric": "loss",
            "mode": "min",
        },
        "params": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}, "z": {"choice": [1, 2, 3]}},
    }


def objective(p: dict[str, Any]) -> float:
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2 + 0.1 * p["z"]


# ---------------------------------------------------------------- per-trial overhead


def hyperhive_per_trial(algorithm: str, n: int) -> float:
    """Median ms per trial of claim (incl. suggestion) + report on a fresh SQLite file."""
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "b.db")
        store.create_search(validate(doc(algorithm, n)))
        times = []
        while True:
            t0 = time.perf_counter()
            t = store.claim("w", 60)
            if t is None:
                break
            assert t.lease_token and t.config
            store.report(t.id, t.lease_token, TrialResult.done({"loss": objective(t.config["params"])}))
            times.append(time.perf_counter() - t0)
        store.close()
    return statistics.median(times) * 1e3


def hyperopt_fmin_per_trial(algorithm: str, n: int) -> float:
    """Mean ms per trial of hyperopt's in-memory fmin (it times no single trial)."""
    space = {"x": hp.uniform("x", 0, 1), "y": hp.uniform("y", 0, 1), "z": hp.choice("z", [1, 2, 3])}
    algo = tpe.suggest if algorithm == "tpe" else rand.suggest
    t0 = time.perf_counter()
    fmin(
        lambda p: {"loss": objective(p), "status": STATUS_OK},
        space,
        algo=algo,
        max_evals=n,
        trials=Trials(),
        rstate=np.random.default_rng(0),
        show_progressbar=False,
    )
    return (time.perf_counter() - t0) / n * 1e3


def optuna_median_ms(study: Any, n: int) -> float:
    """Median ms of ``n`` ask + tell rounds of ``study`` on the benchmark's space."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        p = {
            "x": trial.suggest_float("x", 0, 1),
            "y": trial.suggest_float("y", 0, 1),
            "z": trial.suggest_categorical("z", [1, 2, 3]),
        }
        study.tell(trial, objective(p))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def optuna_per_trial(algorithm: str, n: int) -> float:
    """Median ms per trial of Optuna ask + tell on its SQLite storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        sampler = (
            optuna.samplers.TPESampler(seed=0) if algorithm == "tpe" else optuna.samplers.RandomSampler(0)
        )
        study = optuna.create_study(storage=f"sqlite:///{d}/o.db", sampler=sampler)
        ms = optuna_median_ms(study, n)
        study._storage.remove_session()  # type: ignore[attr-defined]
    return ms


def optuna_memory_per_trial(n: int) -> float:
    """Median ms per trial of Optuna ask + tell, random sampler, in-memory storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna_median_ms(optuna.create_study(sampler=optuna.samplers.RandomSampler(0)), n)


# ---------------------------------------------------------------- throughput


def _hh_worker(path: str, name: str, barrier: Any) -> None:
    store = SQLiteStore(path)
    barrier.wait()
    while (t := store.claim(name, 60)) is not None:
        assert t.lease_token and t.config
        store.report(t.id, t.lease_token, TrialResult.done({"loss": objective(t.config["params"])}))
    store.close()


def _optuna_worker(url: str, n: int, barrier: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="bench", storage=url, sampler=optuna.samplers.RandomSampler())
    barrier.wait()

    def fn(trial: Any) -> float:
        return objective(
            {
                "x": trial.suggest_float("x", 0, 1),
                "y": trial.suggest_float("y", 0, 1),
                "z": trial.suggest_categorical("z", [1, 2, 3]),
            }
        )

    study.optimize(fn, n_trials=n)


def _run_procs(target: Any, args_for: Any, procs: int) -> float:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    ps = [ctx.Process(target=target, args=(*args_for(i), barrier)) for i in range(procs)]
    for p in ps:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
        assert p.exitcode == 0
    return time.perf_counter() - t0


def hyperhive_throughput(procs: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "t.db")
        store = SQLiteStore(path)
        s = store.create_search(validate(doc("random", n)))
        wall = _run_procs(_hh_worker, lambda i: (path, f"w{i}"), procs)
        assert store.get_search(s.id).counts.done == n
        store.close()
    return n / wall


def optuna_throughput(procs: int, n: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/o.db"
        optuna.create_study(study_name="bench", storage=url)
        wall = _run_procs(_optuna_worker, lambda i: (url, n // procs), procs)
    return (n // procs * procs) / wall


# ---------------------------------------------------------------- ask latency


def lecture_doc(algorithm: Any, max_trials: int, name: str = "lecture") -> dict[str, Any]:
    """The bundled lecture CNN search (10 parameters, a named choice of optimizers)."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "search_spaces" / "examples" / "lecture-cnn.yaml"
    d = yaml.safe_load(path.read_text())
    d.update(name=name, algorithm=algorithm, max_trials=max_trials, seed=3)
    return d


SPACES = {"toy (3 params)": doc, "lecture CNN (10 params)": lecture_doc}


def fake_result(metric: str, rng: np.random.Generator) -> TrialResult:
    return TrialResult.done({metric: float(rng.random())})


def fill(store: Store, make_doc: Any, n: int) -> str:
    """A TPE search holding ``n`` finished trials (filled with random suggestions, then imported)."""
    filler = store.create_search(validate(make_doc("random", n, name="filler")))
    rng = np.random.default_rng(0)
    while (t := store.claim("w", 60)) is not None:
        assert t.lease_token
        store.report(t.id, t.lease_token, fake_result(filler.objective_metric, rng))
    bundle = store.export_search(filler.id)
    store.delete_search(filler.id)
    tpe_doc = make_doc("tpe", n + 100, name="tpe-at-n")
    bundle["search"].update(
        document=tpe_doc, name="tpe-at-n", algorithm="tpe", max_trials=n + 100, status="running"
    )
    return store.import_search(bundle).id


def ask_latency(make_doc: Any, n: int, repeats: int) -> tuple[float, float, float]:
    """Paired samples at ``n`` finished trials: Hyperhive's whole claim (slot + history refresh + TPE
    suggestion + saving it) and bare ``tpe.suggest`` on the same trials, interleaved so that both see
    the same machine. Returns (median ms ours, median ms bare, median of the per-pair ratios)."""
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "a.db")
        search_id = fill(store, make_doc, n)
        search = store.get_search(search_id)
        domain = Domain(lambda _: 0.0, validate(search.document).space)
        reader = type(store.engine)()  # a second engine: builds the bare run's Trials, untimed
        rng = np.random.default_rng(1)
        ours, bare = [], []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            t = store.claim("w", 60, search_id=search_id)
            dt = time.perf_counter() - t0
            assert t and t.lease_token and t.config
            trials = reader.history(store, search)
            t0 = time.perf_counter()
            tpe.suggest([n + 1000 + i], domain, trials, i, verbose=False)
            db = time.perf_counter() - t0
            store.report(t.id, t.lease_token, fake_result(search.objective_metric, rng))
            if i:  # the first ask loads the whole history into this process's cache
                ours.append(dt)
                bare.append(db)
        store.close()
    ratios = [o / b for o, b in zip(ours, bare, strict=True)]
    return statistics.median(ours) * 1e3, statistics.median(bare) * 1e3, statistics.median(ratios)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)))


def peer_tpe_asks(n: int, asks: int) -> tuple[float, float]:
    """Median ms of one Optuna TPE ask + tell (in memory) and one hyperopt ``tpe.suggest`` (in
    process) with ``n`` finished trials on the 5-parameter space (:mod:`tpe_scale`'s), interleaved."""
    from tpe_scale import SPACE, hyperopt_trials, optuna_asker

    domain = Domain(lambda _: 0.0, SPACE)
    trials = hyperopt_trials(domain, n, np.random.default_rng(n))
    optuna_ask = optuna_asker(trials)
    optuna_ask(0)
    tpe.suggest([n + 10], domain, trials, 0, verbose=False)
    by_optuna, by_hyperopt = [], []
    for i in range(asks):
        t0 = time.perf_counter()
        optuna_ask(i + 1)
        t1 = time.perf_counter()
        tpe.suggest([n + 10], domain, trials, i + 1, verbose=False)
        by_hyperopt.append(time.perf_counter() - t1)
        by_optuna.append(t1 - t0)
    return statistics.median(by_optuna) * 1e3, statistics.median(by_hyperopt) * 1e3


def _cpu(runs: list[Any]) -> str:
    """The median of the runs' worker CPU ms per trial, or "n/a" where the platform does not say."""
    values = [r.worker_cpu_ms for r in runs if r.worker_cpu_ms is not None]
    return f"{statistics.median(values):.2f}" if values else "n/a"


def real_path_tables(q: bool) -> None:
    import real_path

    n1, n2, repeats = (200, 400, 2) if q else (1000, 2000, 5)
    sizes, more = ((1000,), 10) if q else ((1000, 3000), 40)

    one = real_path.random_rows(1, n1, repeats)
    two = real_path.random_rows(2, n2, repeats)
    hh1 = statistics.median(r.per_trial_ms for r in one)
    tail1 = statistics.median(r.p95_ms for r in one if r.p95_ms is not None)
    mean1 = statistics.median(1e3 / r.trials_per_s for r in one)
    e2e1 = statistics.median(r.e2e_ms for r in one)
    hh2 = statistics.median(r.trials_per_s for r in two)
    e2e2 = statistics.median(1e3 / r.e2e_ms for r in two)
    cpu1, cpu2 = (_cpu(runs) for runs in (one, two))
    om = optuna_memory_per_trial(n1)
    os1 = optuna_per_trial("random", n1 // 4)
    os2 = optuna_throughput(2, n2 // 4)
    hf = hyperopt_fmin_per_trial("random", n1)
    table(
        f"Real path, random search (REST submit, `hyperhive worker --cpu`, API status; toy space; medians of "
        f"{repeats} searches of {n1} trials with 1 worker, {n2} with 2). median: gap between consecutive "
        "finishes (p95: its 95th percentile); mean: first start to last finish; e2e: submit to the "
        "API's completed; worker CPU: the worker processes' user + system CPU ms per trial (what a shared "
        "machine does not stretch)",
        ["workers", "figure", "hyperhive median", "hyperhive p95", "hyperhive mean", "hyperhive e2e",
         "hh worker CPU ms", "optuna memory", "optuna sqlite", "hyperopt fmin", "hh (mean) vs optuna sqlite"],
        [
            ["1", "ms per trial", f"{hh1:.2f}", f"{tail1:.2f}", f"{mean1:.2f}", f"{e2e1:.2f}", cpu1,
             f"{om:.2f}", f"{os1:.2f}", f"{hf:.2f} (mean)", f"{os1 / mean1:.1f}x"],
            ["2", "trials/s", "", "", f"{hh2:.0f}", f"{e2e2:.0f}", cpu2, "", f"{os2:.0f} (2 processes)", "",
             f"{hh2 / os2:.1f}x"],
        ],
    )  # fmt: skip

    runs = real_path.tpe_rows(sizes, more)
    rows = []
    for n in sizes:
        optuna_ms, hyperopt_ms = peer_tpe_asks(n, more)
        hh = runs[n].per_trial_ms
        tail = runs[n].p95_ms
        rows.append(
            [f"{n:,}", f"{hh:.1f}", f"{tail:.1f}" if tail is not None else "n/a", f"{optuna_ms:.1f}",
             f"{hyperopt_ms:.1f}", f"{hh / optuna_ms:.2f}", f"{hh / hyperopt_ms:.2f}"]
        )  # fmt: skip
    table(
        f"Real path, TPE on 5 params: ms per trial of the next {more} trials once n are finished "
        "(hyperhive: median gap between finishes, 1 worker, and its 95th percentile; peers: median ask)",
        [
            "finished n",
            "hyperhive",
            "hyperhive p95",
            "optuna TPE memory",
            "hyperopt tpe.suggest",
            "hh/optuna",
            "hh/hyperopt",
        ],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--part", choices=["all", "store", "real"], default="all", help="tables 1-3, 4-5 or all")
    args = ap.parse_args()
    if importlib.util.find_spec("optuna") is None:
        sys.exit("core_overhead.py compares against Optuna: install the dev extra (pip install -e '.[dev]')")
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    q = args.quick
    n_rand, n_tpe, n_tp = (60, 40, 200) if q else (300, 300, 2000)
    sizes, repeats = ((100, 300) if q else (100, 1000, 3000)), (3 if q else 15)
    print(f"python {sys.version.split()[0]}, {mp.cpu_count()} cores; medians unless noted")
    if args.part != "store":
        real_path_tables(q)
    if args.part == "real":
        return

    rows = []
    for algo, n in (("random", n_rand), ("tpe", n_tpe)):
        hh = hyperhive_per_trial(algo, n)
        hf = hyperopt_fmin_per_trial(algo, n)
        op = optuna_per_trial(algo, n)
        rows.append([algo, str(n), f"{hh:.2f}", f"{hf:.2f} (mean)", f"{op:.2f}", f"{op / hh:.1f}x"])
    table(
        "Per-trial overhead, ms (claim+suggest+report; trivial objective; 3 params)",
        ["algorithm", "trials", "hyperhive sqlite", "hyperopt fmin in-memory", "optuna sqlite", "optuna/hh"],
        rows,
    )

    rows = []
    for procs in (1, 2):
        hh = hyperhive_throughput(procs, n_tp)
        op = optuna_throughput(procs, n_tp // 4)
        rows.append([str(procs), f"{hh:.0f}", f"{op:.0f}", f"{hh / op:.1f}x"])
    table(
        "Throughput, trials/s (random search, processes sharing one SQLite file)",
        ["processes", "hyperhive", "optuna sqlite", "hh/optuna"],
        rows,
    )

    rows = []
    for space, make_doc in SPACES.items():
        for n in sizes:
            ours, bare, ratio = ask_latency(make_doc, n, repeats)
            rows.append([space, str(n), f"{ours:.1f}", f"{bare:.1f}", f"{ratio:.2f}x"])
    table(
        "TPE ask latency, ms (paired, interleaved samples)",
        ["space", "finished trials", "hyperhive claim (TPE)", "bare tpe.suggest", "ratio (median of pairs)"],
        rows,
    )


if __name__ == "__main__":
    main()
