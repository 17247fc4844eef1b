"""TPE ask latency at scale: hyperopt's ``tpe.suggest``, Hyperhive's ``CachedTPE`` and ``FastTPE``, and
Optuna's ``TPESampler``, on the same 5-parameter space, at 100 / 1,000 / 3,000 finished trials.

The space: ``a`` uniform(0, 1), ``b`` loguniform(1e-4, 1), ``c`` a 3-way choice, ``d`` quniform(1, 100, 1),
``e`` uniform(-5, 5); losses are uniform random. Every implementation is asked in memory (no store):
hyperopt's three on one ``Trials`` of ``n`` finished trials, Optuna on an in-memory study holding ``n``
finished trials with the same values (each ask is told FAIL, so the finished count stays ``n``).
Samples are paired and interleaved (each round asks every implementation once, in rotating order), so
all see the same machine load; the table shows medians and the median of the per-round ratios.
"FastTPE + Trials" adds rebuilding ``Trials`` from cached documents with ``trials_from_docs`` (what the
engine did per ask before it kept a History); "FastTPE + History" is the engine's path now:
``FastTPE.from_history`` on a :class:`~hyperhive.tpe_history.History` kept between asks.

Run: ``nice .venv/bin/python benchmarks/tpe_scale.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _stats import p95
from hyperopt import STATUS_OK, Trials, hp, rand, tpe, trials_from_docs
from hyperopt.base import Domain

from hyperhive.tpe import CachedTPE
from hyperhive.tpe_fast import FastTPE
from hyperhive.tpe_history import History

SPACE = {
    "a": hp.uniform("a", 0, 1),
    "b": hp.loguniform("b", np.log(1e-4), 0.0),
    "c": hp.choice("c", [0, 1, 2]),
    "d": hp.quniform("d", 1, 100, 1),
    "e": hp.uniform("e", -5, 5),
}


def hyperopt_trials(domain: Domain, n: int, rng: np.random.Generator) -> Trials:
    trials = Trials()
    docs = []
    for tid in range(n):
        [doc] = rand.suggest([tid], domain, trials, int(rng.integers(2**31)))
        doc["state"] = 2
        doc["result"] = {"status": STATUS_OK, "loss": float(rng.random())}
        docs.append(doc)
    trials.insert_trial_docs(docs)
    trials.refresh()
    return trials


def optuna_asker(trials: Trials) -> Callable[[int], Any]:
    """An in-memory Optuna study holding the same finished trials; returns a function asking it once."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {
        "a": FloatDistribution(0, 1),
        "b": FloatDistribution(1e-4, 1, log=True),
        "c": CategoricalDistribution([0, 1, 2]),
        "d": FloatDistribution(1, 100, step=1),
        "e": FloatDistribution(-5, 5),
    }
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    finished = []
    for doc in trials.trials:
        v = {k: x[0] for k, x in doc["misc"]["vals"].items()}
        v["b"] = min(max(v["b"], 1e-4), 1.0)
        finished.append(optuna.trial.create_trial(params=v, distributions=dists, value=doc["result"]["loss"]))
    study.add_trials(finished)

    def ask(_: int) -> None:
        trial = study.ask(dists)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)

    return ask


def latencies(n: int, repeats: int) -> dict[str, list[float]]:
    domain = Domain(lambda _: 0.0, SPACE)
    trials = hyperopt_trials(domain, n, np.random.default_rng(n))
    docs = list(trials.trials)
    cached, fast, fast_engine, fast_history = CachedTPE(), FastTPE(), FastTPE(), FastTPE()
    history = History(list(domain.params))
    for doc in docs:
        history.set(doc["tid"], doc["misc"]["vals"], doc["result"].get("loss"), in_flight=False)

    def engine_like(seed: int) -> Any:
        return fast_engine([n + 10], domain, trials_from_docs(docs, validate=False), seed)

    askers: dict[str, Callable[[int], Any]] = {
        "tpe.suggest": lambda s: tpe.suggest([n + 10], domain, trials, s, verbose=False),
        "CachedTPE": lambda s: cached([n + 10], domain, trials, s),
        "FastTPE": lambda s: fast([n + 10], domain, trials, s),
        "FastTPE + Trials": engine_like,
        "FastTPE + History": lambda s: fast_history.from_history([n + 10], domain, history, s),
        "Optuna TPE": optuna_asker(trials),
    }
    for ask in askers.values():  # warm-up: graphs, caches
        ask(0)
    samples: dict[str, list[float]] = {k: [] for k in askers}
    names = list(askers)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            askers[name](r + 1)
            samples[name].append(time.perf_counter() - t0)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    sizes, repeats = ((100, 300), 5) if args.quick else ((100, 1000, 3000), args.repeats)
    print(f"python {sys.version.split()[0]}; medians of {repeats} paired, interleaved rounds, ms")
    print("(p95: the 95th percentile of the same rounds; ratios: medians of the per-round ratios)")
    names = ["tpe.suggest", "CachedTPE", "FastTPE", "FastTPE + Trials", "FastTPE + History", "Optuna TPE"]
    tails = ["FastTPE + History", "Optuna TPE"]
    header = [
        "finished trials",
        *names,
        *(f"{k} p95" for k in tails),
        "FastTPE/Optuna",
        "History/Optuna",
        "tpe.suggest/FastTPE",
    ]
    rows = []
    for n in sizes:
        s = latencies(n, repeats)
        med = {k: statistics.median(v) * 1e3 for k, v in s.items()}

        def ratio(a: str, b: str, s: dict[str, list[float]] = s) -> str:
            return f"{statistics.median(x / y for x, y in zip(s[a], s[b], strict=True)):.2f}"

        rows.append(
            [
                str(n),
                *(f"{med[k]:.2f}" for k in names),
                *(f"{p95(s[k]) * 1e3:.2f}" for k in tails),
                ratio("FastTPE", "Optuna TPE"),
                ratio("FastTPE + History", "Optuna TPE"),
                ratio("tpe.suggest", "FastTPE"),
            ]
        )
        print(f"  {n} done", file=sys.stderr)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
