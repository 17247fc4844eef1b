"""``/api/trials/{id}``: one trial in full."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from hyperhive.service.deps import CurrentUser, StoreDep, owned_trial
from hyperhive.service.sampled import sampled_params
from hyperhive.service.schemas import TrialDetail

router = APIRouter(prefix="/api/trials", tags=["trials"])


@router.get("/{trial_id}", response_model=TrialDetail, responses={404: {"description": "no such trial"}})
async def get_trial(trial_id: str, store: StoreDep, user: CurrentUser) -> TrialDetail:
    """A trial: config, every metric (the confusion matrix and per-class scores included), the per-epoch
    history, error, worker, attempts, provenance and timings. Never its lease token."""

    def read() -> TrialDetail:
        trial = owned_trial(store, user, trial_id)
        document = store.get_search(trial.search_id).document or {}
        return TrialDetail.from_trial(trial, sampled_params(document, trial.vals, trial.config))

    # one hop to the thread pool for the store's reads; the response is checked and encoded here
    return await run_in_threadpool(read)
