"""Hyperas's own README example (data() loads scikit-learn's digits instead of MNIST; nothing else changed)
submitted through the API as text/x-python and run by a real worker with --allow-code."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hyperaskit import README, SCRIPTS

from hyperhive.models import SearchStatus, TrialState
from hyperhive.store.base import Store
from hyperhive.workers.daemon import Worker, WorkerOptions


@pytest.mark.slow
def test_readme_example_runs_as_a_search(api: TestClient, tokens: dict, store: Store, tmp_path: Path) -> None:
    r = api.post(
        "/api/searches",
        content=README.encode(),
        headers={"Content-Type": "text/x-python", **tokens["coder"]},
        params={"name": "readme", "max_trials": 1, "algorithm": "tpe", "seed": 1},
    )  # one trial (a TF child process, ~13 s); the lecture-CNN test below runs two, the second on cached data
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    Worker(store, WorkerOptions(burst=True, data_dir=tmp_path / "data", allow_code=True)).work()
    trials = store.list_trials(sid)
    assert [t.state for t in trials] == [TrialState.DONE], [t.error for t in trials]
    for t in trials:
        m = t.metrics
        assert -1.0 <= m["loss"] < 0  # -validation accuracy, as the script returns it
        assert 0.0 <= m["test_accuracy"] <= 1.0  # the returned model's standard metrics on x_test, y_test
        assert {"test_precision", "test_recall", "test_f1", "test_confusion_matrix"} <= set(m)
        assert sum(map(sum, m["test_confusion_matrix"])) == 297
        assert set(t.config["params"]) == {
            "Dropout", "Dense", "Activation", "Dropout_1", "Dropout_2", "add", "optimizer", "batch_size"
        }  # fmt: skip
    search = store.get_search(sid)
    assert search.status == SearchStatus.COMPLETED
    best = api.get(f"/api/searches/{sid}/best", headers=tokens["coder"]).json()
    assert best["value"] == min(t.metrics["loss"] for t in trials)


@pytest.mark.slow
def test_lecture_cnn_script_runs_with_its_conditional_layer(
    api: TestClient, tokens: dict, store: Store, tmp_path: Path
) -> None:
    r = api.post(
        "/api/searches",
        content=(SCRIPTS / "lecture_cnn.py.txt").read_bytes(),
        headers={"Content-Type": "text/x-python", **tokens["root"]},
        params={"name": "lecture-cnn", "max_trials": 2, "algorithm": "random", "seed": 5},
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    Worker(store, WorkerOptions(burst=True, data_dir=tmp_path / "data", allow_code=True)).work()
    trials = store.list_trials(sid)
    assert [t.state for t in trials] == [TrialState.DONE] * 2, [t.error for t in trials]
    # seed 5 takes both branches of the conditional layer in two trials (each trial is a TF child process)
    assert sorted(t.config["params"]["Dense_1"] for t in trials) == ["three", "two"]
    for t in trials:
        assert t.metrics["loss"] == pytest.approx(-t.metrics["test_accuracy"], abs=1e-6)
