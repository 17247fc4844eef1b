"""``/api/workers``: the worker processes that registered with the store."""

from __future__ import annotations

from fastapi import APIRouter

from hyperhive.errors import NotFound
from hyperhive.service.deps import CurrentUser, SettingsDep, StoreDep, may_see
from hyperhive.service.schemas import WorkerPublic

router = APIRouter(prefix="/api/workers", tags=["workers"])


@router.get("", response_model=list[WorkerPublic])
def list_workers(store: StoreDep, settings: SettingsDep, user: CurrentUser) -> list[WorkerPublic]:
    """Every worker, most recently seen first: host, GPUs, current trial, last heartbeat, and ``alive`` or
    ``lost`` (unseen for ``worker_timeout_seconds``). Workers are shared, so every user sees them; the
    current trial's id is shown only to whoever may see its search."""
    now = store.clock()
    out = []
    visible: dict[str, bool] = {}
    for w in store.list_workers():
        show = user.admin
        tid = w.current_trial_id
        if not show and tid is not None:
            if tid not in visible:
                try:
                    search = store.get_search(store.get_trial(tid).search_id)
                    visible[tid] = may_see(user, search.owner)
                except NotFound:
                    visible[tid] = False
            show = visible[tid]
        out.append(WorkerPublic.from_worker(w, now, settings.worker_timeout_seconds, show))
    return out
