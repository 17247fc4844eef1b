"""Issue 8, item 4: per-trial payloads that grow with the square of the class count (or without bound).

On both backends a worker reports a 5,000-class confusion matrix and per-class scores, a function
objective's 100,000-metric dict with megabyte values, 5,000 epochs of 100 values, a megabyte error and
info: the trial is stored truncated (``truncated: true`` and notes), its document below MongoDB's
16 MiB as BSON (measured with ``bson.encode``), the objective value intact; the API's search and trial
list responses carry scalar metrics only, the detail stays on ``GET /api/trials/{id}``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from servicekit import EXAMPLES, bearer, make_client
from storekit import BACKENDS, make_store, search_doc

from hyperhive.models import TrialResult
from hyperhive.payloads import MAX_HISTORY_EPOCHS, MAX_MATRIX_CLASSES, MAX_METRICS
from hyperhive.search_spaces import parse_text, validate
from hyperhive.settings import Settings
from hyperhive.store import Store

MONGO_LIMIT = 16 << 20
TARGET = 8 << 20  # the caps' worst case is well below the limit


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    s, cleanup = make_store(backend, tmp_path)
    try:
        yield s
    finally:
        cleanup()


def stored_size(store: Store, trial_id: str) -> int:
    """The trial's document as BSON: the MongoDB document itself, or the SQLite trial as one."""
    raw: Any = store
    if store.__class__.__name__ == "MongoStore":
        return len(bson.encode(raw._trials.find_one({"_id": trial_id})))
    return len(bson.encode(store.get_trial(trial_id).to_dict()))


def keras_search(store: Store) -> str:
    doc = parse_text((EXAMPLES / "lecture-cnn.yaml").read_text(), "yaml")
    return store.create_search(validate(doc), owner="alice").id


def report(store: Store, search_id: str, result: TrialResult) -> str:
    trial = store.claim("w1", 60.0, search_id=search_id)
    assert trial is not None and trial.lease_token is not None
    store.report(trial.id, trial.lease_token, result)
    return trial.id


def classification(classes: int) -> dict[str, Any]:
    """What a worker without caps reported for ``classes`` classes (val as numpy, test as lists)."""
    matrix = np.eye(classes, dtype=np.int8) * 3
    row = [0] * classes
    per_class = {k: [0.5] * classes for k in ("precision", "recall", "f1")} | {"support": [3] * classes}
    return {
        "val_accuracy": 0.75,
        "val_loss": 0.5,
        "val_confusion_matrix": matrix,
        "val_per_class": per_class,
        "test_accuracy": 0.7,
        "test_confusion_matrix": matrix.tolist() if classes <= MAX_MATRIX_CLASSES else [row] * classes,
        "test_per_class": per_class | {"labels": [f"class {i}" for i in range(classes)]},
    }


def test_thousands_of_classes_are_stored_truncated_below_16_mib(store: Store) -> None:
    sid = keras_search(store)
    metrics = classification(5000)
    row_size = len(bson.encode({"m": metrics["test_confusion_matrix"][0]}))
    assert row_size * 5000 > 2 * MONGO_LIMIT  # one matrix alone, uncapped, is over twice the limit
    tid = report(store, sid, TrialResult.done(metrics))
    t = store.get_trial(tid)
    assert t.state == "done" and t.value == 0.75
    assert t.metrics["truncated"] is True and "val_confusion_matrix" not in t.metrics
    notes = " | ".join(t.metrics["truncated_notes"])
    assert "val_confusion_matrix: 5000 classes, stored only up to 256" in notes
    assert "test_per_class: 5000 classes, stored only up to 1000" in notes
    assert t.metrics["test_accuracy"] == 0.7
    assert stored_size(store, tid) < TARGET
    # a class count within the caps is stored whole
    small = classification(MAX_MATRIX_CLASSES)
    t2 = store.get_trial(report(store, sid, TrialResult.done(small)))
    assert "truncated" not in t2.metrics
    assert t2.metrics["val_confusion_matrix"] == small["test_confusion_matrix"]
    assert t2.metrics["test_per_class"]["labels"][255] == "class 255"


def test_a_function_objectives_huge_metrics_are_capped(store: Store) -> None:
    sid = store.create_search(validate(search_doc(max_trials=2)), owner="alice").id
    metrics: dict[str, Any] = {f"m{i}": i for i in range(100_000)}
    metrics["blob"] = list(range(3_000_000))
    metrics["text"] = "x" * 5_000_000
    metrics["loss"] = 0.25  # the objective, reported last
    assert len(bson.encode(metrics)) > MONGO_LIMIT
    tid = report(store, sid, TrialResult.done(metrics, info={"host": "h", "junk": list(range(100_000))}))
    t = store.get_trial(tid)
    assert t.state == "done" and t.value == 0.25 and t.metrics["loss"] == 0.25
    assert len(t.metrics) <= MAX_METRICS + 2 and t.metrics["truncated"] is True
    assert "100003 metrics reported, the first 256 stored" in t.metrics["truncated_notes"]
    assert t.info["truncated"] is True and t.info["host"] == "h" and "junk" not in t.info
    assert stored_size(store, tid) < TARGET

    sid2 = store.create_search(validate(search_doc(max_trials=2)), owner="alice").id
    big_values = {"loss": 0.5, "blob": list(range(3_000_000)), "text": "x" * 5_000_000}
    t = store.get_trial(report(store, sid2, TrialResult.done(big_values)))
    assert "blob" not in t.metrics and len(t.metrics["text"]) < 1100 and t.value == 0.5
    assert any(n.startswith("blob:") for n in t.metrics["truncated_notes"])


def test_history_error_and_heartbeats_are_capped(store: Store) -> None:
    sid = keras_search(store)
    trial = store.claim("w1", 60.0, search_id=sid)
    assert trial is not None and trial.lease_token is not None
    history = [
        {"epoch": i + 1, "val_accuracy": 0.5, **{f"k{j}": j for j in range(100)}} for i in range(5_000)
    ]
    store.heartbeat(trial.id, trial.lease_token, 60.0, history)
    beat = store.get_trial(trial.id)
    assert len(beat.history) == MAX_HISTORY_EPOCHS and beat.history[-1]["epoch"] == 5_000
    assert stored_size(store, trial.id) < TARGET
    failed = TrialResult.failed("E" * 5_000_000, history=history)
    store.report(trial.id, trial.lease_token, failed)
    t = store.get_trial(trial.id)
    assert t.state == "failed" and t.error is not None and len(t.error) < 9000
    assert t.error.endswith("(5000000 characters, truncated)")
    assert len(t.history) == MAX_HISTORY_EPOCHS and all(len(r) <= 64 for r in t.history)
    assert "history: 5000 epochs reported, the last 1000 stored" in t.metrics["truncated_notes"]
    assert stored_size(store, trial.id) < TARGET


def test_search_and_list_responses_carry_scalar_metrics_only(store: Store, tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'unused.db'}", home=tmp_path / "home")  # type: ignore[call-arg]
    client = make_client(settings, store)
    auth = bearer(store.create_token("alice")[1])
    sid = keras_search(store)
    tid = report(store, sid, TrialResult.done(classification(MAX_MATRIX_CLASSES)))
    search = client.get(f"/api/searches/{sid}", headers=auth)
    assert search.status_code == 200 and len(search.content) < 20_000
    assert search.json()["best"]["metrics"] == {"val_accuracy": 0.75, "val_loss": 0.5, "test_accuracy": 0.7}
    listed = client.get(f"/api/searches/{sid}/trials", headers=auth)
    assert len(listed.content) < 20_000 and "val_confusion_matrix" not in listed.text
    assert len(client.get("/api/searches", headers=auth).content) < 20_000
    detail = client.get(f"/api/trials/{tid}", headers=auth).json()  # the detail is on its own route
    assert len(detail["metrics"]["val_confusion_matrix"]) == MAX_MATRIX_CLASSES


def test_workers_do_not_compute_details_the_store_would_drop() -> None:
    from hyperhive.workers.metrics import split_metrics

    y = np.arange(1200) % 1200
    probs = np.eye(1200, dtype=np.float32)
    m = split_metrics(y, probs, 1200, "val", lambda _y, _p: 0.1)
    assert m["val_accuracy"] == 1.0 and m["truncated"] is True
    assert "val_confusion_matrix" not in m and "val_per_class" not in m
    assert m["truncated_notes"] == [
        "val_per_class: 1200 classes, stored only up to 1000",
        "val_confusion_matrix: 1200 classes, stored only up to 256",
    ]
    small = split_metrics(y % 10, np.eye(10)[y % 10], 10, "val", lambda _y, _p: 0.1)
    assert len(small["val_confusion_matrix"]) == 10 and "truncated" not in small


def test_an_imported_bundle_is_capped_like_a_report(store: Store, backend: str, tmp_path: Path) -> None:
    sid = keras_search(store)
    tid = report(store, sid, TrialResult.done(classification(10)))
    bundle = store.export_search(sid)
    [trial] = [t for t in bundle["trials"] if t["id"] == tid]
    trial["metrics"]["val_confusion_matrix"] = [[0] * 3000] * 3000
    trial["history"] = [{"epoch": i, "loss": 0.1} for i in range(5000)]
    trial["error"] = "E" * 1_000_000
    (tmp_path / "other").mkdir()
    other, cleanup = make_store(backend, tmp_path / "other")
    try:
        other.import_search(bundle)
        t = other.get_trial(tid)
        assert "val_confusion_matrix" not in t.metrics and t.metrics["truncated"] is True
        assert len(t.history) == MAX_HISTORY_EPOCHS and t.error is not None and len(t.error) < 9000
        assert t.metrics["val_accuracy"] == 0.75 and stored_size(other, tid) < TARGET
    finally:
        cleanup()
