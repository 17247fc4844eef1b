"""Claims on the MongoDB store (mongomock) at ``n`` finished trials: per-claim milliseconds (wall and
this process's CPU time, the latter steadier on a shared machine) for a TPE and a random search,
median of ``--claims`` claims (each followed by a report, so the history keeps changing as it does
under a worker), and the trial documents the claim's queries return (what a real server would send).

The space is 5 parameters (uniform, loguniform, a 3-way choice, quniform, uniform). The ``n`` finished
trials are made once with random suggestions in a SQLite file, exported, and imported into a fresh
mongomock store for each algorithm; the first claim of each search (which reads the whole history into
the engine's cache) is left out of the median and shown on its own.

Run: ``nice .venv/bin/python benchmarks/mongo_feed.py`` (``--n 1000 --claims 30``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hyperhive.models import TrialResult
from hyperhive.search_spaces import validate
from hyperhive.store.sqlite import SQLiteStore
from hyperhive.testing import mongo_test_store


def doc(algorithm: str, max_trials: int) -> dict[str, Any]:
    return {
        "name": "bench",
        "algorithm": algorithm,
        "max_trials": max_trials,
        "seed": 5,
        "objective": {"function": "hyperhive.demo_objectives:quadratic", "metric": "loss", "mode": "min"},
        "params": {
            "a": {"uniform": [0, 1]},
            "b": {"loguniform": [1e-4, 1]},
            "c": {"choice": [0, 1, 2]},
            "d": {"quniform": [1, 100, 1]},
            "e": {"uniform": [-5, 5]},
        },
    }


def finished_bundle(n: int) -> dict[str, Any]:
    """An export of a search holding ``n`` done trials (random suggestions, random losses)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder, SQLiteStore(Path(folder) / "fill.db") as store:
        s = store.create_search(validate(doc("random", n)))
        while (t := store.claim("filler", 60)) is not None:
            assert t.lease_token
            store.report(t.id, t.lease_token, TrialResult.done({"loss": float(rng.random())}))
        return store.export_search(s.id)


def claim_ms(
    bundle: dict[str, Any], algorithm: str, claims: int
) -> tuple[float, list[float], list[float], list[int]]:
    """The first claim's wall ms, then the following claims' wall ms, CPU ms and trial documents read,
    on a fresh mongomock store."""
    store, cleanup = mongo_test_store()
    read = [0]
    real_find = store._find

    def counting_find(what: str, coll: Any, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        docs = real_find(what, coll, *args, **kw)
        if coll is store._trials:
            read[0] += len(docs)
        return docs

    store._find = counting_find  # type: ignore[method-assign]
    try:
        n = len(bundle["trials"])
        search = dict(bundle["search"])
        search.update(
            document=doc(algorithm, n + claims + 1),
            algorithm=algorithm,
            max_trials=n + claims + 1,
            status="running",
            finished_at=None,
        )
        sid = store.import_search({**bundle, "search": search}).id
        rng = np.random.default_rng(1)
        times, cpu, docs = [], [], []
        for _ in range(claims + 1):
            read[0] = 0
            start, start_cpu = time.perf_counter(), time.process_time()
            t = store.claim("bench", 60, search_id=sid)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            docs.append(read[0])
            assert t is not None and t.lease_token and t.config is not None, t
            store.report(t.id, t.lease_token, TrialResult.done({"loss": float(rng.random())}))
        return times[0], times[1:], cpu[1:], docs[1:]
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="finished trials before the timed claims")
    parser.add_argument("--claims", type=int, default=30, help="timed claims per algorithm")
    args = parser.parse_args()
    bundle = finished_bundle(args.n)
    print(f"MongoDB store (mongomock), {args.n} finished trials, {args.claims} claims each")
    print(f"{'algorithm':<10} {'first ms':>9} {'median ms':>10} {'CPU ms':>8} {'trial docs read':>16}")
    for algorithm in ("tpe", "random"):
        first, rest, cpu, docs = claim_ms(bundle, algorithm, args.claims)
        median, median_cpu, median_docs = (statistics.median(x) for x in (rest, cpu, docs))
        print(f"{algorithm:<10} {first:>9.1f} {median:>10.2f} {median_cpu:>8.2f} {median_docs:>16g}")


if __name__ == "__main__":
    main()
