"""Helpers for the dashboard tests: a real uvicorn server in a thread over a real SQLite store (so a test
can write trials through the store while a browser watches), searches with trials, and Debian's chromium
driven by Playwright."""

from __future__ import annotations

import copy
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from hyperhive.models import Search, TrialResult
from hyperhive.search_spaces import load
from hyperhive.settings import Settings
from hyperhive.store.base import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader"]

XSS_ERROR = '<img src=x onerror="window.__xss=1">'
XSS_LABEL = '<img src=x onerror="window.__xss=2">'


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ThreadServer:
    """uvicorn serving ``create_app(settings, store)`` on a free port in a daemon thread."""

    def __init__(self, settings: Settings, store: Store) -> None:
        from hyperhive.service.app import create_app

        config = uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def conditional_doc(name: str, max_trials: int) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "search_spaces/examples/conditional-block.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["name"] = name
    doc["max_trials"] = max_trials
    doc["algorithm"] = "random"
    doc["seed"] = 7
    doc["objective"] = {"metric": "val_accuracy", "mode": "max"}
    return doc


def fake_result(number: int, epochs: int = 4, labels: list[str] | None = None) -> TrialResult:
    """Made-up Keras metrics: a learning curve, a confusion matrix and per-class scores."""
    acc = 0.55 + 0.4 * ((number * 37) % 11) / 11
    history = [
        {"epoch": e, "val_accuracy": acc * (0.6 + 0.4 * e / epochs), "loss": 1.2 / e}
        for e in range(1, epochs + 1)
    ]
    metrics = {
        "val_accuracy": acc,
        "val_loss": 1 - acc,
        "val_confusion_matrix": [[8, 1, 1], [0, 9, 1], [2, 0, 8]],
        "val_per_class": {
            "precision": [0.8, 0.9, 0.8],
            "recall": [0.8, 0.9, 0.8],
            "f1": [0.8, 0.9, 0.8],
            "support": [10, 10, 10],
            "labels": labels or ["cat", "dog", "bird"],
        },
    }
    info = {"host": "test-host", "versions": {"keras": "3.x"}, "dataset_sha256": "ab" * 32, "seed": number}
    return TrialResult.done(metrics, history=history, info=info)


def run_fake_trials(store: Store, search: Search, n: int, **kw: Any) -> list[str]:
    """Claim and report ``n`` trials of the search as a worker would; returns their ids."""
    ids = []
    for _ in range(n):
        trial = store.claim("w-dash", 60.0, search_id=search.id)
        assert trial is not None and trial.lease_token is not None
        store.report(trial.id, trial.lease_token, fake_result(trial.number, **kw))
        ids.append(trial.id)
    return ids


def create_search(store: Store, owner: str, name: str, max_trials: int) -> Search:
    return store.create_search(load(conditional_doc(name, max_trials)), owner=owner)


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    assert path is not None
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
