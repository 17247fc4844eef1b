"""``/dashboard-api``: the JSON the dashboard's scripts fetch, authenticated by the session cookie.

Readers only, except cancel and extend, which need the page's CSRF token (see :mod:`.session`).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from hyperhive.errors import NotFound
from hyperhive.models import Search, TrialState
from hyperhive.service.dashboard.importance import MAX_ROWS as MAX_IMPORTANCE_ROWS
from hyperhive.service.dashboard.importance import ImportanceCache, importances
from hyperhive.service.dashboard.render import dataset_label, elapsed, number, to_json, to_yaml
from hyperhive.service.dashboard.session import DataUser, check_csrf
from hyperhive.service.dashboard.views import RowCache, SearchRows, head_row
from hyperhive.service.deps import SettingsDep, StoreDep, owned_search
from hyperhive.service.schemas import ExtendRequest
from hyperhive.store.base import Store
from hyperhive.store.rows import TrialHead

router = APIRouter(prefix="/dashboard-api", tags=["dashboard"], include_in_schema=False)


def row_cache(request: Request) -> RowCache:
    """The app's cache of compact trial rows (one per app, made by ``install_dashboard``)."""
    return request.app.state.dashboard_rows


Rows = Annotated[RowCache, Depends(row_cache)]


def importance_cache(request: Request) -> ImportanceCache:
    return request.app.state.dashboard_importance


Importances = Annotated[ImportanceCache, Depends(importance_cache)]
TABLE_SORTS = ("number", "value", "state", "duration")
CURVES_PER_REQUEST = 200
"""Learning curves one ``/curves`` request may ask for (the page asks for at most 300 in a few requests)."""
PLOT_BEST = 300
PLOT_RANDOM = 200
"""Rows of the parallel coordinates and slices beyond which they show a sample (see :func:`plot_sample`)."""


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
    """The search's trials changed after revision ``since`` of cache ``epoch`` (all of them when the
    epoch is not the current one) as columns (see :mod:`.views`), its parameters and its summary."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search)
    full = epoch != rows.epoch
    head = {
        "epoch": rows.epoch,
        "revision": rows.revision,
        "full": full,
        "params": rows.params if full else None,
        "search": search_summary(search, store.clock()),
    }
    # the columns are JSON already (all of them encoded once per revision): splice them in
    text = (
        json.dumps(head, separators=(",", ":"), allow_nan=False)[:-1]
        + ',"rows":'
        + rows.encoded_since(0 if full else since)
        + "}"
    )
    return Response(text, media_type="application/json")


@router.get("/searches/{search_id}/curves")
def curves(
    search_id: str,
    store: StoreDep,
    user: DataUser,
    cache: Rows,
    ids: Annotated[str, Query(max_length=CURVES_PER_REQUEST * 40)] = "",
) -> Response:
    """Learning curves (the objective per epoch, downsampled) of the listed trials of this search
    (comma-separated, at most :data:`CURVES_PER_REQUEST`); ids of other searches are left out."""
    search = owned_search(store, user, search_id)
    wanted = list(dict.fromkeys(i for i in ids.split(",") if i))
    if len(wanted) > CURVES_PER_REQUEST:
        raise HTTPException(
            422, detail=f"ids: at most {CURVES_PER_REQUEST} trials per request, got {len(wanted)}"
        )
    return fast_json({"curves": cache.rows(store, search).curves_of(store, wanted)})


def plot_sample(heads: list[TrialHead], mode: str, seed: str) -> tuple[list[TrialHead], int]:
    """The trials with a value that the parameter plots draw: all of them up to
    :data:`PLOT_BEST` + :data:`PLOT_RANDOM`, else the best :data:`PLOT_BEST` and a random
    :data:`PLOT_RANDOM` of the others (the same draw for the same trials); and how many had a value."""
    scored = sorted((h for h in heads if h.value is not None and math.isfinite(h.value)), key=_number_of)
    if len(scored) <= PLOT_BEST + PLOT_RANDOM:
        return scored, len(scored)
    sign = 1.0 if mode == "min" else -1.0
    ranked = sorted(scored, key=lambda h: (sign * (h.value or 0.0), h.number))
    rest = sorted(ranked[PLOT_BEST:], key=_number_of)
    rng = random.Random(f"{seed}:{len(scored)}")
    picked = ranked[:PLOT_BEST] + rng.sample(rest, PLOT_RANDOM)
    return sorted(picked, key=_number_of), len(scored)


def _number_of(h: TrialHead) -> int:
    return h.number


def with_values(rows: SearchRows, store: Store, heads: list[TrialHead]) -> list[dict[str, Any]]:
    """``heads`` as rows with their parameter values (trials deleted meanwhile left out)."""
    values = rows.values_of(store, heads)
    return [head_row(h, values[h.id]) for h in heads if h.id in values]


@router.get("/searches/{search_id}/sample")
def sample(search_id: str, store: StoreDep, user: DataUser, cache: Rows) -> Response:
    """The rows the parallel coordinates and slice plots draw (see :func:`plot_sample`), with their
    parameter values and how many trials had a value: a plot of 10,000 lines or points would neither
    draw fast nor read well."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search)
    key = (rows.revision, PLOT_BEST, PLOT_RANDOM)
    hit = rows.memo.get("sample")
    if hit is not None and hit[0] == key:
        return Response(hit[1], media_type="application/json")
    picked, scored = plot_sample(rows.all_heads(), search.objective_mode, search.id)
    out = with_values(rows, store, picked)
    response = fast_json(
        {
            "rows": out,
            "scored": scored,
            "best": min(PLOT_BEST, len(out)),
            "sampled": len(picked) < scored,
        }
    )
    rows.memo["sample"] = (key, bytes(response.body))
    return response


def _duration(h: TrialHead) -> float:
    if h.started_at is None or h.finished_at is None:
        return -1.0
    return float(h.finished_at - h.started_at)


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
    rows = cache.rows(store, search)
    heads = rows.all_heads()
    if state:
        heads = [h for h in heads if h.state.value == state]
    valued = sort != "value"
    missing = [h for h in heads if not valued and h.value is None]
    present = [h for h in heads if valued or h.value is not None]
    keys: dict[str, Any] = {
        "number": _number_of,
        "value": lambda h: h.value,
        "state": lambda h: (h.state.value, h.number),
        "duration": _duration,
    }
    present.sort(key=keys[sort], reverse=desc)
    ordered = present + missing
    start = (page - 1) * size
    shown = with_values(rows, store, ordered[start : start + size])
    return fast_json({"total": len(ordered), "page": page, "size": size, "rows": shown})


def importance_rows(rows: SearchRows, store: Store) -> list[dict[str, Any]]:
    """The done trials with a value that importance is computed over (a fixed-seed sample of at most
    :data:`.importance.MAX_ROWS`), with their parameter values."""
    done = sorted((h for h in rows.all_heads() if _is_scored_done(h)), key=_number_of)
    if len(done) > MAX_IMPORTANCE_ROWS:
        done = sorted(random.Random(0).sample(done, MAX_IMPORTANCE_ROWS), key=_number_of)
    return with_values(rows, store, done)


def _is_scored_done(h: TrialHead) -> bool:
    return h.state is TrialState.DONE and h.value is not None and math.isfinite(h.value)


@router.get("/searches/{search_id}/importance")
def importance(
    search_id: str, store: StoreDep, user: DataUser, cache: Rows, imp: Importances
) -> dict[str, Any]:
    """Random-forest importance of each parameter over the done trials where it is active (see
    :mod:`.importance`): computed in the background and cached until another trial finishes;
    ``pending`` says a newer result is on its way (``params`` is then the previous one, or null)."""
    search = owned_search(store, user, search_id)
    rows = cache.rows(store, search)
    done = sum(1 for h in rows.all_heads() if _is_scored_done(h))
    params = rows.params

    def compute() -> list[dict[str, Any]]:
        return importances(importance_rows(rows, store), params)

    result, fresh = imp.get(search.id, (rows.epoch, done), compute)
    return {"params": result, "trials": done, "pending": not fresh}


@router.get("/searches/{search_id}/best")
def best_configuration(search_id: str, store: StoreDep, user: DataUser) -> dict[str, Any]:
    """The best trial's configuration as the page shows it (YAML and JSON text), or nulls when
    there is none yet: the page asks when the search's best trial changes."""
    search = owned_search(store, user, search_id)
    trial = None
    if search.best_trial_id is not None:
        with contextlib.suppress(NotFound):
            trial = store.get_trial(search.best_trial_id)
    if trial is None or trial.config is None:
        return {"id": None, "number": None, "value": None, "yaml": None, "json": None}
    return {
        "id": trial.id,
        "number": trial.number,
        "value": number(trial.value),
        "yaml": to_yaml(trial.config),
        "json": to_json(trial.config),
    }


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
    from hyperhive.service.routes.searches import extend_search

    extend_search(search_id, ExtendRequest(n=body.n), store, settings, user)
    return search_summary(store.get_search(search_id), store.clock())
