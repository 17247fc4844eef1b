"""``/api/searches``: submit, list, read, follow, cancel, extend, delete and export searches.

A search is submitted as its raw document: JSON (``application/json``) or YAML (``application/yaml``,
``application/x-yaml``, ``text/yaml``, ``text/x-yaml``); any other content type, ``text/plain`` and none
included, is 415 (a browser sends those cross-site without asking: see :mod:`hyperhive.service.http_policy`).
A Hyperas script is sent as ``text/x-python`` with the document's other fields as query parameters
(``?name=mnist&max_trials=30&algorithm=tpe&seed=1&mode=min``); it becomes ``{script: <text>, ...}``.
A search with a ``script`` runs the submitter's code on the workers (``--allow-code`` ones only): only
a token allowed to submit code (admins, tokens created with ``--code``) may submit it, never the
anonymous user of a ``--no-auth`` server (403).
It is validated by ``search_spaces``; every problem comes back at once as 422 ``{"detail": [{"loc":
["body", "model", "layers", 3, "rate"], "path": "model.layers[3].rate", "msg": ...}]}``.

Dataset sources in a submitted search: ``name`` (built in) and ``upload`` (an uploaded dataset the user
may see) for everyone; ``path`` and ``folder`` read files on the worker machines, so only admins may use
them, and never the anonymous user of a ``--no-auth`` server (403): any web page its browser opens can
reach that server.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hyperhive.errors import LimitExceeded, NotFound
from hyperhive.models import Search, SearchStatus, TokenInfo, TrialState
from hyperhive.npz import DatasetError, Limits, check_decoded
from hyperhive.search_spaces import MAX_TRIALS_LIMIT
from hyperhive.service.deps import LOCAL_USER, CurrentUser, SettingsDep, StoreDep, may_see, owned_search
from hyperhive.service.export import export_filename, public_bundle, trials_csv
from hyperhive.service.json_response import PlainJSON
from hyperhive.service.quotas import within_quota
from hyperhive.service.sampled import sampled_params, sampler
from hyperhive.service.schemas import (
    ExtendRequest,
    Page,
    SearchDetail,
    SearchPublic,
    TrialDetail,
    TrialPublic,
    ValidationErrorResponse,
    page_dict,
    search_detail_dict,
    search_public_dict,
    trial_public_dict,
)
from hyperhive.store.base import Store, runs_code

router = APIRouter(prefix="/api/searches", tags=["searches"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)
SCRIPT_TYPES = ("text/x-python",)
SCRIPT_QUERY_INT = ("max_trials", "seed", "max_consecutive_failures", "max_retries")
SCRIPT_QUERY_STR = ("name", "description", "algorithm")
ADMIN_SOURCES = ("path", "folder")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such search (or not yours)"}}

_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "description": "the search document, as JSON or YAML",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            "application/yaml": {"schema": {"type": "string"}},
            "text/x-python": {"schema": {"type": "string"}},
        },
    }
}


async def read_document(request: Request) -> dict[str, Any]:
    """The request body parsed as a search document (415 for an unknown content type; 422 for bad text;
    the body size is limited by the middleware while it streams in)."""
    from hyperhive.search_spaces import parse_text

    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in JSON_TYPES:
        fmt: str | None = "json"
    elif content_type in YAML_TYPES:
        fmt = "yaml"
    elif content_type in SCRIPT_TYPES:
        return _script_document(b"".join([chunk async for chunk in request.stream()]), request)
    else:
        accepted = ", ".join((*JSON_TYPES, *YAML_TYPES, *SCRIPT_TYPES))
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"unsupported content type {content_type!r}; send one of {accepted}",
        )
    chunks = [chunk async for chunk in request.stream()]
    return parse_text(b"".join(chunks), fmt)


def _script_document(body: bytes, request: Request) -> dict[str, Any]:
    """The search document of a Hyperas script sent as ``text/x-python`` with its fields in the query."""
    from hyperhive.search_spaces import FieldError, SpecError

    errors: list[FieldError] = []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([FieldError("script", f"not UTF-8 text (byte {exc.start})")]) from None
    doc: dict[str, Any] = {"script": text}
    for key, value in request.query_params.multi_items():
        if key in SCRIPT_QUERY_STR:
            doc[key] = value
        elif key in SCRIPT_QUERY_INT:
            try:
                doc[key] = int(value)
            except ValueError:
                errors.append(FieldError(key, f"must be an integer, got {value[:40]!r}"))
        elif key in ("mode", "metric"):
            doc.setdefault("objective", {})[key] = value
        else:
            known = ", ".join((*SCRIPT_QUERY_STR, *SCRIPT_QUERY_INT, "mode", "metric"))
            errors.append(FieldError(key, f"unknown query field; expected one of {known}"))
    if errors:
        raise SpecError(errors)
    doc.setdefault("name", "hyperas")
    if "max_trials" not in doc:
        from hyperhive.search_spaces.hyperas import script_max_evals

        evals = script_max_evals(text)
        if evals is not None:
            doc["max_trials"] = evals  # the script's optim.minimize(max_evals=...), as Hyperas would run it
    return doc


def _refuse_code(settings: Any, user: TokenInfo) -> None:
    """403 unless this user may submit code (see the module docstring)."""
    if settings.no_auth and user == LOCAL_USER:
        msg = (
            "refused without authentication (--no-auth): a script runs its code on the workers, and any "
            "program or web page on this machine can reach this server; run with tokens (`hyperhive up` "
            "uses an admin token)"
        )
    elif not user.may_submit_code:
        msg = (
            "a script runs its own code on the workers (remote code execution), so submitting one needs an "
            "admin token or one created with `hyperhive token create NAME --code`"
        )
    else:
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail=[{"loc": ["body", "script"], "path": "script", "msg": msg, "type": "forbidden"}],
    )


def _check_dataset(store: Store, user: TokenInfo, dataset: Any, limits: Limits | None = None) -> None:
    """Dataset sources this user may use (see the module docstring); 422 naming the field otherwise.
    An upload must fit ``limits.max_dataset_bytes`` once decoded, resized to ``image_size`` if given."""
    from hyperhive.search_spaces import FieldError, SpecError

    if not isinstance(dataset, dict):
        return
    upload = dataset.get("upload")
    if upload is not None:
        try:
            info = store.get_dataset(str(upload))
        except NotFound:
            info = None
        if info is None or not may_see(user, info.owner):
            raise SpecError([FieldError("dataset.upload", f"no uploaded dataset with id {upload!r}")])
        try:
            check_decoded(info.meta, limits or Limits(), dataset.get("image_size"))
        except DatasetError as exc:
            where = "dataset.image_size" if dataset.get("image_size") else "dataset.upload"
            raise SpecError([FieldError(where, exc.errors[0][1])]) from None
    for key in ADMIN_SOURCES:
        if key in dataset and not user.admin:
            raise SpecError(
                [
                    FieldError(
                        f"dataset.{key}",
                        "reading files on the worker machines needs an admin token; upload the .npz "
                        "(POST /api/datasets or `hyperhive dataset upload`) and use dataset: {upload: ID}",
                    )
                ]
            )


def _refuse_anonymous_sources(dataset: Any) -> None:
    """403 for ``path``/``folder`` datasets from the anonymous user of a ``--no-auth`` server."""
    if not isinstance(dataset, dict):
        return
    refused = [key for key in ADMIN_SOURCES if key in dataset]
    if refused:
        msg = (
            "refused without authentication (--no-auth): any web page open in a browser on this machine "
            "can reach this server, so an anonymous request may not read files on the worker machines; "
            "upload the .npz (`hyperhive dataset upload`) and use dataset: {upload: ID}, or run with tokens "
            "(`hyperhive up` uses an admin token)"
        )
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=[
                {"loc": ["body", "dataset", key], "path": f"dataset.{key}", "msg": msg, "type": "forbidden"}
                for key in refused
            ],
        )


NO_CODE_WORKER = (
    "no worker started with --allow-code is alive: only such workers run a script's trials (its code runs "
    "on their machine); the search waits until one starts"
)


def _code_notice(store: Store, search: Search, timeout: float) -> str | None:
    """:data:`NO_CODE_WORKER` for a runnable script search while no live worker runs code."""
    if not runs_code(search.document) or search.status not in (SearchStatus.PENDING, SearchStatus.RUNNING):
        return None
    now = store.clock()
    if any(w.info.get("allow_code") and w.is_alive(now, timeout) for w in store.list_workers()):
        return None
    return NO_CODE_WORKER


def _detail(store: Store, search: Search, settings: Any = None) -> SearchDetail:
    return SearchDetail.model_validate(_detail_dict(store, search, settings))


def _detail_dict(store: Store, search: Search, settings: Any = None) -> dict[str, Any]:
    best = None
    if search.best_trial_id is not None:
        try:
            best = store.get_trial(search.best_trial_id)
        except NotFound:
            best = None
    notice = _code_notice(store, search, settings.worker_timeout_seconds) if settings is not None else None
    return search_detail_dict(search, best, notice)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SearchDetail,
    openapi_extra=_SUBMIT_BODY,
    responses={
        403: {
            "description": "over the user's quota; path/folder datasets from the --no-auth user; a script "
            "from a token that may not submit code"
        },
        415: {"description": "unsupported content type"},
        422: {"model": ValidationErrorResponse, "description": "every problem in the document"},
    },
)
async def create_search(
    request: Request, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> SearchDetail:
    """Submit a search document (JSON or YAML). 201 with the stored search, ``pending``; 403 over the
    user's quota (running searches, trials, stored bytes)."""
    from hyperhive.search_spaces import validate

    document = await read_document(request)

    def create() -> SearchDetail:
        if "script" in document:
            _refuse_code(settings, user)
        spec = validate(document)
        dataset = getattr(spec, "dataset", None) or document.get("dataset")
        if settings.no_auth and user == LOCAL_USER:
            _refuse_anonymous_sources(spec.dataset)
        _check_dataset(store, user, dataset, Limits.from_settings(settings))
        size = len(json.dumps(spec.to_document(), separators=(",", ":")))
        with within_quota(store, settings, user, searches=1, trials=spec.max_trials, stored_bytes=size):
            search = store.create_search(spec, owner=user.name)
        return _detail(store, search, settings)

    return await run_in_threadpool(create)


# The hot read routes (status, lists, details) take the store and settings off the app (``request``)
# rather than as dependencies: each dependency FastAPI resolves costs more than these routes' own work
# (benchmarks/load.py).
@router.get("", response_model=Page[SearchPublic])
async def list_searches(
    request: Request,
    user: CurrentUser,
    status: SearchStatus | None = None,
    name: str | None = Query(None, max_length=500),
    owner: Annotated[
        str | None, Query(max_length=500, description="admins only; others see their own")
    ] = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Response:
    """Searches, newest first, filtered by status, name and (for admins) owner."""
    if not user.admin:
        owner = user.name
    store: Store = request.app.state.store

    def read() -> PlainJSON:
        items = store.list_searches(status=status, name=name, owner=owner, limit=limit, offset=offset)
        total = store.count_searches(status=status, name=name, owner=owner)
        return PlainJSON(page_dict([search_public_dict(s) for s in items], total, limit, offset))

    return await run_in_threadpool(read)


@router.get("/{search_id}", response_model=SearchDetail, responses=NOT_FOUND)
async def get_search(search_id: str, request: Request, user: CurrentUser) -> Response:
    """A search: status, trial counts by state, progress, its best trial (value, config, metrics), and a
    ``notice`` when it cannot progress (a script with no ``--allow-code`` worker alive)."""
    store: Store = request.app.state.store
    settings = request.app.state.settings

    def read() -> PlainJSON:
        return PlainJSON(_detail_dict(store, owned_search(store, user, search_id), settings))

    return await run_in_threadpool(read)


@router.get("/{search_id}/trials", response_model=Page[TrialPublic], responses=NOT_FOUND)
async def list_trials(
    search_id: str,
    request: Request,
    user: CurrentUser,
    state: TrialState | None = None,
    sort: Literal["number", "value", "created_at", "finished_at"] = "number",
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="default: ascending, except sort=value which lists the best first"),
    ] = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> Response:
    """A search's trials, one page, sorted and filtered by state. Trials without a value sort last."""
    store: Store = request.app.state.store
    return await run_in_threadpool(_trial_page, store, user, search_id, state, sort, order, limit, offset)


def _trial_page(
    store: Store,
    user: TokenInfo,
    search_id: str,
    state: TrialState | None,
    sort: str,
    order: str | None,
    limit: int,
    offset: int,
) -> PlainJSON:
    search = owned_search(store, user, search_id)
    best_first = sort == "value" and search.objective_mode == "max"
    descending = best_first if order is None else order == "desc"
    trials = store.list_trials_brief(
        search_id, state=state, sort=sort, descending=descending, limit=limit, offset=offset
    )
    # the search's counters are the trials by state (the store keeps them in the same transaction as
    # each trial's change): no COUNT over the search's trials for every page
    counts = search.counts.to_dict()
    total = counts[str(state)] if state is not None else counts["total"]
    named = sampler(search.document or {})
    items = [trial_public_dict(t, named(t.vals, t.config)) for t in trials]
    return PlainJSON(page_dict(items, total, limit, offset))


@router.get(
    "/{search_id}/best",
    response_model=TrialDetail,
    responses={404: {"description": "no such search, or no done trial yet"}},
)
def best_trial(search_id: str, store: StoreDep, user: CurrentUser) -> TrialDetail:
    """The search's best done trial in full; 404 while no trial is done."""
    search = owned_search(store, user, search_id)
    best = store.best_trial(search_id)
    if best is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"search {search_id!r} has no done trial yet")
    return TrialDetail.from_trial(best, sampled_params(search.document or {}, best.vals, best.config))


@router.post("/{search_id}/cancel", response_model=SearchDetail, responses=NOT_FOUND)
def cancel_search(search_id: str, store: StoreDep, user: CurrentUser) -> SearchDetail:
    """Cancel the search: queued trials are cancelled, running ones told to stop at their next
    heartbeat. Cancelling a finished search changes nothing."""
    owned_search(store, user, search_id)
    return _detail(store, store.cancel_search(search_id))


@router.post(
    "/{search_id}/extend",
    response_model=SearchDetail,
    responses={
        **NOT_FOUND,
        403: {"description": "over the user's quota"},
        409: {"description": "the search is cancelled"},
    },
)
def extend_search(
    search_id: str, body: ExtendRequest, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> SearchDetail:
    """Add ``n`` trials to the budget; a completed or failed search runs again. 409 if cancelled; 422 if
    the budget would pass ``MAX_TRIALS_LIMIT``, the limit a submitted document has; 403 over the user's
    quota of trials (or of running searches, for a search it reopens)."""
    search = owned_search(store, user, search_id)
    reopens = int(search.status in (SearchStatus.COMPLETED, SearchStatus.FAILED))
    try:  # the limit is checked inside the store's atomic update: concurrent extends cannot pass it
        with within_quota(store, settings, user, trials=body.n, searches=reopens):
            extended = store.extend_search(search_id, body.n, limit=MAX_TRIALS_LIMIT)
    except LimitExceeded as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=[{"loc": ["body", exc.field], "path": exc.field, "msg": str(exc), "type": "value_error"}],
        ) from None
    return _detail(store, extended)


@router.delete(
    "/{search_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=NOT_FOUND
)
def delete_search(search_id: str, store: StoreDep, user: CurrentUser) -> Response:
    """Delete the search and all its trials (running ones are cancelled first)."""
    search = owned_search(store, user, search_id)
    if not search.status.is_final:
        store.cancel_search(search_id)
    store.delete_search(search_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{search_id}/export",
    responses={
        **NOT_FOUND,
        200: {
            "description": "CSV (one row per trial) or a JSON bundle that `import_search` reads",
            "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {}},
        },
    },
)
def export_search(
    search_id: str,
    store: StoreDep,
    user: CurrentUser,
    format: Literal["csv", "json"] = "csv",
) -> Response:
    """Every trial of the search: ``csv`` (flattened config, value, state, scalar metrics) or ``json``
    (the full bundle: search and trials with metrics and histories; no lease tokens)."""
    search = owned_search(store, user, search_id)
    headers = {"Content-Disposition": f'attachment; filename="{export_filename(search, format)}"'}
    if format == "json":
        return JSONResponse(public_bundle(store.export_search(search_id)), headers=headers)
    text = trials_csv(store.list_trials(search_id), search.document)
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
