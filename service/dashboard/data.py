"""``/dashboard-api``: the JSON the dashboard's scripts fetch, authenticated by the session cookie.

Readers only, except cancel and extend, which need the page's CSRF token (see :mod:`.session`).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from hyperhive.models import Search
from service.dashboard.importance import ImportanceCache
from service.dashboard.render import dataset_label, elapsed
from service.dashboard.session import DataUser, check_csrf
from service.dashboard.views import RowCache, param_meta
from service.deps import SettingsDep, StoreDep, owned_search
from service.schemas import ExtendRequest

router = APIRouter(prefix="/dashboard-api", tags=["dashboard"], include_in_schema=False)


def row_cache(request: Request) -> RowCache:
    """The app's cache of compact trial rows (one per app, made by ``install_dashboard``)."""
    return request.app.state.dashboard_rows


Rows = Annotated[RowCache, Depends(row_cache)]


def importance_cache(request: Request) -> ImportanceCache:
    return request.app.state.dashboard_importance


Importances = Annotated[ImportanceCache, Depends(importance_cache)]
TABLE_SORTS = ("number", "value", "state", "duration")
CURVES_KEPT = 300
"""Learning curves sent in a full load: the best finished trials' (the page draws no more)."""


def fast_json(payload: dict[str, Any]) -> Response:
    """``payload`` (plain JSON types, finite floats) encoded by ``json.dumps`` alone: FastAPI's encoder
    walks every value and costs several times more on 10,000 rows."""
    return Response(
        json.dumps(payload, separators=(",", ":"), allow_nan=False), media_type="application/json"
    )


def search_summary(search: Search, now: float) -> dict[str, Any]:
    """The header of a search page: what changes while it runs."""
    return {
        "id": search.id,
        "name": search.name,
        "status": str(search.status),
        "counts": search.counts.to_dict(),
        "max_trials": search.max_trials,
        "best_value": search.best_value,
        "best_trial_id": search.best_trial_id,
        "objective_metric": search.objective_metric,
        "objective_mode": search.objective_mode,
        "algorithm": search.algorithm,
        "dataset": dataset_label(search),
        "elapsed": elapsed(search, now),
        "error": search.error,
    }


@router.get("/searches/{search_id}/rows")
def search_rows(
    search_id: str,
    store: StoreDep,
    user: DataUser,
    cache: Rows,
    epoch: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The search's compact trial rows changed after revision ``since`` of cache ``epoch`` (all rows
    when the epoch is not the current one), its parameters and its summary."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search)
    full = epoch != rows.epoch
    sent = rows.since(0 if full else since)
    head = {
        "epoch": rows.epoch,
        "revision": rows.revision,
        "full": full,
        "params": param_meta(search) if full else None,
        "search": search_summary(search, store.clock()),
    }
    body = rows.encoded(sent, curves_for_the_best(sent, search.objective_mode) if full else None)
    # the rows are JSON already (encoded once per change): splice them in
    text = json.dumps(head, separators=(",", ":"), allow_nan=False)[:-1] + ',"rows":' + body + "}"
    return Response(text, media_type="application/json")


def curves_for_the_best(rows: list[dict[str, Any]], mode: str) -> set[str] | None:
    """The ids whose learning curve (``c``) a full load carries: open trials and the best
    :data:`CURVES_KEPT` finished ones, what the page draws (``None``: all). Later updates carry the
    curve of every changed trial, and a finished trial never moves up the ranking, so the page misses
    nothing."""
    finished = [r for r in rows if r["s"] not in ("queued", "running")]
    if len(finished) <= CURVES_KEPT:
        return None
    sign = 1.0 if mode == "min" else -1.0
    finished.sort(key=lambda r: math.inf if r["v"] is None else sign * r["v"])
    keep = {r["id"] for r in finished[:CURVES_KEPT]}
    return keep | {r["id"] for r in rows if r["s"] in ("queued", "running")}


def _duration(row: dict[str, Any]) -> float:
    if row["t0"] is None or row["t1"] is None:
        return -1.0
    return float(row["t1"] - row["t0"])


@router.get("/searches/{search_id}/table")
def trial_table(
    search_id: str,
    store: StoreDep,
    user: DataUser,
    cache: Rows,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: Annotated[Literal["number", "value", "state", "duration"], Query()] = "number",
    desc: bool = False,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One page of the trial table, sorted and filtered on the server (rows as in ``/rows``)."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search).all_rows()
    if state:
        rows = [r for r in rows if r["s"] == state]
    missing = [r for r in rows if sort == "value" and r["v"] is None]
    present = [r for r in rows if not (sort == "value" and r["v"] is None)]
    keys = {
        "number": lambda r: r["n"],
        "value": lambda r: r["v"],
        "state": lambda r: (r["s"], r["n"]),
        "duration": _duration,
    }
    present.sort(key=keys[sort], reverse=desc)
    ordered = present + missing
    start = (page - 1) * size
    return fast_json(
        {"total": len(ordered), "page": page, "size": size, "rows": ordered[start : start + size]}
    )


@router.get("/searches/{search_id}/importance")
def importance(
    search_id: str, store: StoreDep, user: DataUser, cache: Rows, imp: Importances
) -> dict[str, Any]:
    """Random-forest importance of each parameter over the done trials where it is active (see
    :mod:`.importance`); cached until another trial finishes."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search).all_rows()
    done = sum(1 for r in rows if r["s"] == "done" and r["v"] is not None)
    return {"params": imp.get(search.id, done, rows, param_meta(search)), "trials": done}


@router.post("/searches/{search_id}/cancel", dependencies=[Depends(check_csrf)])
def cancel(search_id: str, store: StoreDep, user: DataUser) -> dict[str, Any]:
    """Cancel the search (the owner or an admin; CSRF-protected)."""
    owned_search(store, user, search_id)
    return search_summary(store.cancel_search(search_id), store.clock())


class ExtendBody(BaseModel):
    n: int = Field(ge=1, le=100_000)


@router.post("/searches/{search_id}/extend", dependencies=[Depends(check_csrf)])
def extend(
    search_id: str, body: ExtendBody, store: StoreDep, settings: SettingsDep, user: DataUser
) -> dict[str, Any]:
    """Add ``n`` trials (the same rules as ``POST /api/searches/{id}/extend``; CSRF-protected)."""
    from service.routes.searches import extend_search

    extend_search(search_id, ExtendRequest(n=body.n), store, settings, user)
    return search_summary(store.get_search(search_id), store.clock())
