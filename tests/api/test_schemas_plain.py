"""The hot read routes send plain dicts encoded by PlainJSON instead of building the response models
(service/json_response.py): each dict must be exactly what its model would send, for awkward values
too (None fields, integer metrics, NaN and infinities, private info, non-ASCII text)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel

from hyperhive.models import Search, SearchStatus, Trial, TrialCounts, TrialState
from hyperhive.service.json_response import PlainJSON
from hyperhive.service.schemas import (
    Page,
    SearchDetail,
    SearchPublic,
    TrialDetail,
    TrialPublic,
    TrialSummary,
    page_dict,
    search_detail_dict,
    search_public_dict,
    trial_detail_dict,
    trial_public_dict,
    trial_summary_dict,
)


def trial(**over: Any) -> Trial:
    fields: dict[str, Any] = {
        "id": "t1", "search_id": "s1", "number": 3, "state": TrialState.DONE,
        "config": {"x": 0.5, "name": "é\u2028<"}, "vals": {"x": [0.5]}, "seed": 7,
        "created_at": 1.0, "updated_at": 2.0, "value": 0.25, "loss": 0.25,
        "metrics": {"loss": 0.25, "epochs": 3, "flag": True, "nan": math.nan, "inf": -math.inf,
                    "per_class": [0.1, 0.2], "cm": [[1, 0], [0, 1]]},
        "history": [{"epoch": 1, "loss": math.inf}], "worker_id": "w", "lease_token": "SECRET",
        "lease_expires_at": 9.0, "attempts": 2, "started_at": 3.0, "finished_at": 2.5,
        "info": {"host": "h", "reported_token": "SECRET2"},
    }  # fmt: skip
    fields.update(over)
    return Trial(**fields)


def search(**over: Any) -> Search:
    fields: dict[str, Any] = {
        "id": "s1", "name": "ünïcode", "owner": None, "status": SearchStatus.RUNNING,
        "document": {"name": "n", "params": {"x": {"uniform": [0, 1]}}, "big": 2**70},
        "algorithm": "tpe", "max_trials": 8, "seed": 1, "objective_metric": "loss",
        "objective_mode": "min", "max_consecutive_failures": 5, "max_retries": 1,
        "created_at": 1.0, "updated_at": 2.0, "started_at": None, "finished_at": None,
        "counts": TrialCounts(queued=1, running=2, done=3, failed=1, pruned=0, cancelled=1),
        "best_trial_id": "t1", "best_value": 0.25, "error": None,
    }  # fmt: skip
    fields.update(over)
    return Search(**fields)


def sent(data: Any) -> Any:
    return json.loads(PlainJSON(data).body)


def model_sends(model: type[BaseModel], data: Any) -> Any:
    return json.loads(model.model_validate(data).model_dump_json())


TRIALS = [
    trial(),
    trial(state=TrialState.QUEUED, config=None, vals=None, value=None, loss=None, metrics={},
          history=[], worker_id=None, started_at=None, finished_at=None, info={}),
]  # fmt: skip
SEARCHES = [search(), search(max_trials=0, best_trial_id=None, best_value=None, error="boom", owner="al")]


@pytest.mark.parametrize("t", TRIALS)
def test_trial_dicts_send_what_the_trial_models_send(t: Trial) -> None:
    params = {"x": 0.5, "opt": "(none)"}
    assert sent(trial_summary_dict(t)) == model_sends(TrialSummary, trial_summary_dict(t))
    assert sent(trial_public_dict(t, params)) == model_sends(TrialPublic, trial_public_dict(t, params))
    assert sent(trial_detail_dict(t, params)) == model_sends(TrialDetail, trial_detail_dict(t, params))
    assert sent(trial_detail_dict(t)) == model_sends(TrialDetail, trial_detail_dict(t))


@pytest.mark.parametrize("s", SEARCHES)
def test_search_dicts_send_what_the_search_models_send(s: Search) -> None:
    assert sent(search_public_dict(s)) == model_sends(SearchPublic, search_public_dict(s))
    for best in (TRIALS[0], None):
        d = search_detail_dict(s, best, "a notice")
        assert sent(d) == model_sends(SearchDetail, d)


def test_pages_send_what_the_page_models_send() -> None:
    trials = page_dict([trial_public_dict(t) for t in TRIALS], 12, 2, 4)
    assert sent(trials) == model_sends(Page[TrialPublic], trials)
    searches = page_dict([search_public_dict(s) for s in SEARCHES], 2, 50, 0)
    assert sent(searches) == model_sends(Page[SearchPublic], searches)


def test_private_fields_never_leave_and_non_finite_numbers_are_null() -> None:
    body = PlainJSON(trial_detail_dict(TRIALS[0])).body.decode()
    assert "SECRET" not in body and "lease_token" not in body and "reported_token" not in body
    detail = json.loads(body)
    assert detail["metrics"]["nan"] is None and detail["metrics"]["inf"] is None
    assert detail["history"] == [{"epoch": 1, "loss": None}]
    assert detail["duration"] == 0.0  # finished before it started (clock skew): never negative
    listed = sent(trial_public_dict(TRIALS[0]))
    assert listed["metrics"] == {"loss": 0.25, "epochs": 3.0}  # single finite numbers only
