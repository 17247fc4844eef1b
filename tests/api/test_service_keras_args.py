"""A search document with Keras mistakes is refused at submit (422) with every mistake at its path and a
"did you mean", and nothing is stored (issue 12: it used to be accepted and fail trial after trial)."""

from __future__ import annotations

import json
from typing import Any

from servicekit import Users

from hyperhive.store.base import Store

FIRST_HOUR = """\
name: first-hour
max_trials: 5
objective: {metric: val_acc}
dataset: {name: digits}
model:
  layers:
    - {type: Conv2D, filters: 16, kernel_size: 3, activaton: relu}
    - {type: Flatten}
    - {type: Dense, untis: 32, activation: relux}
"""


def test_keras_mistakes_are_422_all_at_once_and_nothing_is_stored(
    client: Any, users: Users, store: Store
) -> None:
    r = client.post(
        "/api/searches", content=FIRST_HOUR, headers={**users.alice, "content-type": "application/yaml"}
    )
    assert r.status_code == 422, r.text
    by_path = {item["path"]: item["msg"] for item in r.json()["detail"]}
    assert set(by_path) == {
        "model.layers[0].activaton",
        "model.layers[2].untis",
        "model.layers[2].activation",
        "objective.metric",
    }, by_path
    assert by_path["model.layers[0].activaton"] == "unknown argument for Conv2D; did you mean 'activation'?"
    assert by_path["model.layers[2].untis"] == "unknown argument for Dense; did you mean 'units'?"
    assert by_path["model.layers[2].activation"] == "unknown activation 'relux'; did you mean 'relu'?"
    assert by_path["objective.metric"].startswith("unknown metric 'val_acc'; did you mean 'val_accuracy'?")
    assert store.list_searches() == []

    fixed = (
        FIRST_HOUR.replace("activaton", "activation")
        .replace("untis", "units")
        .replace("relux", "relu")
        .replace("val_acc}", "val_accuracy}")
    )
    r = client.post(
        "/api/searches", content=fixed, headers={**users.alice, "content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    assert [s.name for s in store.list_searches()] == ["first-hour"]


def test_a_json_document_with_a_bad_choice_option_is_422_at_the_option(client: Any, users: Users) -> None:
    doc = {
        "name": "opts",
        "max_trials": 3,
        "model": {"layers": [{"type": "Dense", "units": 8, "activation": {"choice": ["relu", "relux"]}}]},
        "training": {"optimizer": {"type": "Adam", "beta1": 0.9}, "loss": "categorical_crossentropyy"},
    }
    r = client.post(
        "/api/searches", content=json.dumps(doc), headers={**users.alice, "content-type": "application/json"}
    )
    assert r.status_code == 422
    paths = {item["path"] for item in r.json()["detail"]}
    assert paths == {"model.layers[0].activation[1]", "training.optimizer.beta1", "training.loss"}
