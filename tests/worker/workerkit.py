"""Helpers for the worker tests: search documents, in-process and subprocess workers, store proxies."""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hyperhive import search_spaces
from hyperhive.errors import StoreUnavailable
from hyperhive.models import Search, Trial
from hyperhive.store.base import Store
from hyperhive.workers.daemon import Worker, WorkerOptions

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

TINY_CNN = [
    {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "units": 32, "activation": "relu"},
]
GOOD_TRAINING = {"epochs": 2, "batch_size": 64, "optimizer": {"type": "Adam", "learning_rate": 0.01}}


def function_doc(
    max_trials: int = 3, function: str = "hh_objectives:slow_square", **params: Any
) -> dict[str, Any]:
    return {
        "name": "fn",
        "max_trials": max_trials,
        "seed": 1,
        "algorithm": "random",
        "objective": {"function": function},
        "params": {"x": {"uniform": [-2, 2]}, **params},
    }


def keras_doc(
    layers: list[Any] | None = None,
    training: Mapping[str, Any] | None = None,
    max_trials: int = 2,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "keras"),
        "max_trials": max_trials,
        "seed": extra.pop("seed", 5),
        "algorithm": extra.pop("algorithm", "random"),
        "dataset": extra.pop("dataset", {"name": "digits"}),
        "model": {"layers": copy.deepcopy(layers if layers is not None else TINY_CNN)},
        "training": copy.deepcopy(dict(training if training is not None else GOOD_TRAINING)),
        **extra,
    }


def create_search(store: Store, doc: Mapping[str, Any]) -> Search:
    return store.create_search(search_spaces.validate(dict(doc)))


def worker_options(tmp_path: Path, **overrides: Any) -> WorkerOptions:
    base: dict[str, Any] = {
        "burst": True,
        "lease_seconds": 30.0,
        "heartbeat_seconds": 5.0,
        "allow_objective": ["hyperhive.demo_objectives", "hh_objectives"],
        "data_dir": tmp_path / "data",
        "retry_max_delay": 0.2,
    }
    base.update(overrides)
    return WorkerOptions(**base)


def run_worker(store: Store, tmp_path: Path, **overrides: Any) -> Worker:
    worker = Worker(store, worker_options(tmp_path, **overrides))
    worker.work()
    return worker


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.update(extra)
    return env


def hyperhive_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hyperhive.cli", *args]


def start_worker_process(store_url: str, log_path: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """``hyperhive worker --store URL ARGS`` in a subprocess, its output in ``log_path``."""
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            hyperhive_cmd("worker", "--store", store_url, "--allow-objective", "hh_objectives", *args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=subprocess_env(**env),
            cwd=str(REPO),
        )
    finally:
        log.close()


class StoreProxy:
    """Delegates every attribute to a real store; subclasses override the calls they script."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ScriptedConfigs(StoreProxy):
    """Claims hand the worker the given configurations, in order (the store keeps its own)."""

    def __init__(self, store: Store, configs: list[dict[str, Any]]) -> None:
        super().__init__(store)
        self.configs = list(configs)

    def claim(self, *args: Any, **kwargs: Any) -> Trial | None:
        return self._scripted(self._store.claim(*args, **kwargs))

    def report_and_claim(self, *args: Any, **kwargs: Any) -> tuple[Trial, Trial | None]:
        """The worker reports and claims in one call: its claim is scripted too."""
        reported, trial = self._store.report_and_claim(*args, **kwargs)
        return reported, self._scripted(trial)

    def _scripted(self, trial: Trial | None) -> Trial | None:
        if trial is not None and self.configs:
            trial = dataclasses.replace(trial, config=self.configs.pop(0))
        return trial


class FlakyStore(StoreProxy):
    """The named calls raise StoreUnavailable their first ``n`` times."""

    def __init__(self, store: Store, **failures: int) -> None:
        super().__init__(store)
        self.failures = dict(failures)
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in self.failures:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.failures[name] > 0:
                self.failures[name] -= 1
                raise StoreUnavailable(f"{name}: connection refused (test)")
            return attr(*args, **kwargs)

        return call
