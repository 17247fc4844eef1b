"""``/api/trials/{id}``: one trial in full."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from hyperhive.service.deps import CurrentUser, owned_trial_and_search
from hyperhive.service.json_response import PlainJSON
from hyperhive.service.sampled import sampled_params
from hyperhive.service.schemas import TrialDetail, trial_detail_dict
from hyperhive.store.base import Store

router = APIRouter(prefix="/api/trials", tags=["trials"])


@router.get("/{trial_id}", response_model=TrialDetail, responses={404: {"description": "no such trial"}})
async def get_trial(trial_id: str, request: Request, user: CurrentUser) -> Response:
    """A trial: config, every metric (the confusion matrix and per-class scores included), the per-epoch
    history, error, worker, attempts, provenance and timings. Never its lease token."""
    # the store off the app, not as a dependency: resolving one costs more than this route's work
    store: Store = request.app.state.store

    def read() -> PlainJSON:
        trial, search = owned_trial_and_search(store, user, trial_id)
        document = search.document or {}
        return PlainJSON(trial_detail_dict(trial, sampled_params(document, trial.vals, trial.config)))

    # one hop to the thread pool for the store's reads and the encoding
    return await run_in_threadpool(read)
