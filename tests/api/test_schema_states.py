"""One source of truth for states and shapes: the API's schemas take the trial states and search
statuses from hyperhive.models, detail models extend the public ones, and the algorithm options are
renamed for hyperopt from one table."""

from __future__ import annotations

import dataclasses

from hyperhive.models import SearchStatus, TrialCounts, TrialState
from hyperhive.search_spaces.spec import ALGORITHM_OPTIONS, HYPEROPT_OPTION_NAMES, hyperopt_options
from hyperhive.service.schemas import (
    Counts,
    SearchDetail,
    SearchPublic,
    TrialDetail,
    TrialPublic,
    TrialSummary,
)


def enum_values(model: type, field: str) -> list[str]:
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    ref = schema["properties"][field]["$ref"].rsplit("/", 1)[-1]
    return list(schema["$defs"][ref]["enum"])


def test_every_trial_state_is_counted_in_the_store_and_the_api() -> None:
    states = [str(s) for s in TrialState]
    assert [f.name for f in dataclasses.fields(TrialCounts)] == states
    assert list(Counts.model_fields) == [*states, "total", "finished"]
    counts = TrialCounts(queued=1, running=2, done=3, failed=4, pruned=5, cancelled=6)
    assert Counts(**counts.to_dict()).model_dump() == counts.to_dict()


def test_api_states_and_statuses_are_the_models_enums() -> None:
    assert enum_values(SearchPublic, "status") == [str(s) for s in SearchStatus]
    for model in (TrialPublic, TrialDetail, TrialSummary):
        assert enum_values(model, "state") == [str(s) for s in TrialState]


def test_detail_models_extend_the_public_ones() -> None:
    assert issubclass(TrialDetail, TrialPublic) and issubclass(SearchDetail, SearchPublic)
    assert set(TrialPublic.model_fields) < set(TrialDetail.model_fields)
    assert {"history", "seed", "info", "lease_expires_at"} <= set(TrialDetail.model_fields)


def test_every_algorithm_option_has_its_hyperopt_name() -> None:
    for algorithm, options in ALGORITHM_OPTIONS.items():
        assert set(HYPEROPT_OPTION_NAMES[algorithm]) == set(options), algorithm
    tpe = hyperopt_options(
        "tpe", {"n_startup_trials": 5, "n_ei_candidates": 7, "gamma": 0.2, "prior_weight": 1}
    )
    assert tpe == {"n_startup_jobs": 5, "n_EI_candidates": 7, "gamma": 0.2, "prior_weight": 1}
