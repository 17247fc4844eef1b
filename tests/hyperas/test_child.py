"""The trial process's pieces that need no process: outcomes, Keras-2 names, line numbers."""

from __future__ import annotations

import pytest

from hyperhive.workers.hyperas_child import Keras2History, keras3_hint, outcome


def test_outcome_takes_loss_status_and_scalar_extras() -> None:
    out = outcome(
        {"loss": -0.9, "status": "ok", "acc": 0.9, "model": object(), "arr": [1, 2]}, {"test_f1": 0.8}
    )
    assert out == {
        "loss": -0.9,
        "status": "ok",
        "metrics": {"test_f1": 0.8, "acc": 0.9, "skipped_keys": ["arr"], "loss": -0.9},
    }
    assert outcome(0.5, {})["loss"] == 0.5
    assert "status 'fail'" in outcome({"loss": 1, "status": "fail"}, {})["error"]
    assert "must return" in outcome("nope", {})["error"]
    assert "a loss of nan" in outcome({"loss": float("nan")}, {})["error"]


def test_keras2_history_names_and_hints() -> None:
    h = Keras2History(accuracy=[0.5], val_accuracy=[0.6])
    assert h["val_acc"] == [0.6] and h["acc"] == [0.5]
    with pytest.raises(KeyError, match="val_loss"):
        h["val_loss"]
    assert (
        keras3_hint("Argument(s) not recognized: {'lr': 0.1}")
        == "Keras 3 optimizers take learning_rate= instead of lr="
    )
    assert keras3_hint("No module named 'keras.utils.np_utils'") is not None
    assert keras3_hint("something else") is None
