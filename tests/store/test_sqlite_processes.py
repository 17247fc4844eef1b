"""Several processes claiming from one SQLite file: no slot twice, exact totals, no report lost."""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from storekit import search_doc

from hyperhive.models import SearchStatus, TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore


@contextmanager
def _without_tests_root_on_path() -> Iterator[None]:
    """Start spawned children without ``tests/`` on ``sys.path``: pytest puts it there when a run holds
    a test file at that level, and a test folder named like a package (there was a
    ``tests/search_spaces/``) would shadow the editable install in the child as a namespace package
    ("cannot import name 'validate' ... (unknown location)"). Test folders are no longer named like the
    project's packages; this keeps the children independent of that rule."""
    root = Path(__file__).resolve().parents[1]
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
    try:
        yield
    finally:
        sys.path[:] = saved


def _work(path: str, worker: str, queue: mp.Queue, barrier: Any) -> None:  # type: ignore[type-arg]
    store = SQLiteStore(path)
    barrier.wait(timeout=60)  # everyone starts claiming together, however slow its start was
    reported: list[tuple[str, int]] = []
    while True:
        t = store.claim(worker, 30)
        if t is None:
            break
        assert t.lease_token and t.config
        x = t.config["params"]["x"]
        store.heartbeat(t.id, t.lease_token, 30, [{"epoch": 1, "loss": x}])
        store.report(t.id, t.lease_token, TrialResult.done({"loss": (x - 0.3) ** 2}))
        reported.append((t.id, t.number))
    store.close()
    queue.put(reported)


@pytest.mark.parametrize("algorithm,max_trials", [("random", 120), ("tpe", 40)])
def test_processes_share_one_file_without_losing_or_doubling(
    tmp_path: Path, algorithm: str, max_trials: int
) -> None:
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    s = store.create_search(validate(search_doc(algorithm=algorithm, max_trials=max_trials)))
    ctx = mp.get_context("spawn" if algorithm == "tpe" else "fork")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_work, args=(path, f"w{i}", queue, barrier)) for i in range(4)]
    with _without_tests_root_on_path():
        for p in procs:
            p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    reported = [r for rs in results for r in rs]
    assert len(reported) == max_trials, "every slot reported exactly once"
    assert sorted(n for _, n in reported) == list(range(max_trials)), "no slot taken twice"
    assert sum(1 for rs in results if rs) >= 2, "the work was shared"
    final = store.get_search(s.id)
    assert final.status == SearchStatus.COMPLETED
    assert final.counts.done == max_trials and final.counts.total == max_trials
    trials = store.list_trials(s.id)
    assert len(trials) == max_trials and all(t.state == TrialState.DONE for t in trials)
    assert all(t.history == [{"epoch": 1, "loss": t.config["params"]["x"]}] for t in trials if t.config)
    best = min(trials, key=lambda t: t.value if t.value is not None else 1e9)
    assert final.best_trial_id == best.id
