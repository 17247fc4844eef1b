"""The dashboard's pages: ``/login``, ``/logout``, ``/`` (searches), ``/searches/{id}``, ``/trials/{id}``,
``/workers``. A page without a session redirects to ``/login?next=<page>``; someone else's search or
trial is a 404 page, exactly like a missing one."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hyperhive.errors import NotFound
from hyperhive.models import SearchStatus, TokenInfo
from hyperhive.service.dashboard import data
from hyperhive.service.dashboard.data import search_summary
from hyperhive.service.dashboard.render import elapsed, page
from hyperhive.service.dashboard.session import (
    COOKIE,
    COOKIE_MAX_AGE,
    MaybeUser,
    check_origin,
    safe_next,
)
from hyperhive.service.deps import SettingsDep, StoreDep, may_see, owned_search, owned_trial

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_LISTED = 5000
SEARCH_SORTS = ("created", "name", "status", "best", "progress")


class SignIn(Exception):
    """Raised by :func:`page_user` without a session; the app answers with a redirect to /login."""

    def __init__(self, target: str) -> None:
        self.target = target


def page_user(request: Request, user: MaybeUser) -> TokenInfo:
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignIn(target)
    return user


PageUser = Annotated[TokenInfo, Depends(page_user)]


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignIn)
    return RedirectResponse(f"/login?next={quote(exc.target, safe='/')}", status_code=303)


def not_found(request: Request, user: TokenInfo, what: str) -> HTMLResponse:
    return page(
        request, "error.html", user, 404, title="Not found", message=f"No such {what} (or not yours)."
    )


# ------------------------------------------------------------------ sign-in
@router.get("/login")
def login_form(
    request: Request,
    user: MaybeUser,
    next: str | None = None,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The sign-in form; ``?token=`` (the link ``hyperhive up`` prints) fills it in, and signing in still
    takes a click: a GET never signs anyone in, so a link from another site cannot either."""
    return page(request, "login.html", user, next=safe_next(next), error=None, prefill=token or "")


@router.post("/login")
def login(
    request: Request,
    store: StoreDep,
    token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_origin(request)
    info = store.authenticate(token.strip()) if token.strip() else None
    if info is None:
        return page(
            request, "login.html", None, next=safe_next(next), error="Unknown or revoked token.", prefill=""
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# ------------------------------------------------------------------ searches
def _progress(s: Any) -> float:
    return s.counts.finished / s.max_trials if s.max_trials else 0.0


@router.get("/")
def searches_page(
    request: Request,
    store: StoreDep,
    user: PageUser,
    status: Annotated[SearchStatus | None, Query()] = None,
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[Literal["created", "name", "status", "best", "progress"], Query()] = "created",
    desc: bool = True,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    owner = None if user.admin else user.name
    found = store.list_searches(status=status, owner=owner, limit=MAX_LISTED)
    text = q.strip().lower()
    if text:
        found = [s for s in found if text in s.name.lower() or text in s.id.lower()]
    keys: dict[str, Any] = {
        "created": lambda s: s.created_at,
        "name": lambda s: s.name.lower(),
        "status": lambda s: str(s.status),
        "best": lambda s: (s.best_value is not None, s.best_value or 0.0),
        "progress": _progress,
    }
    found.sort(key=keys[sort], reverse=desc)
    pages = max(1, (len(found) + PAGE_SIZE - 1) // PAGE_SIZE)
    page_no = min(page_no, pages)
    shown = found[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
    now = store.clock()
    rows = [{"s": s, "progress": _progress(s), "elapsed": elapsed(s, now)} for s in shown]
    return page(
        request,
        "searches.html",
        user,
        rows=rows,
        total=len(found),
        pages=pages,
        page_no=page_no,
        status=str(status) if status else "",
        q=q,
        sort=sort,
        desc=desc,
        statuses=[str(x) for x in SearchStatus],
        truncated=len(found) >= MAX_LISTED,
    )


@router.get("/searches/{search_id}")
def search_page(search_id: str, request: Request, store: StoreDep, user: PageUser) -> Response:
    try:
        search = owned_search(store, user, search_id)
    except NotFound:
        return not_found(request, user, "search")
    best = None
    if search.best_trial_id is not None:
        try:
            best = store.get_trial(search.best_trial_id)
        except NotFound:
            best = None
    may_change = user.admin or search.owner == user.name
    # what search.js asks for first, exactly as it spells it (see prefetch.js)
    api = f"/dashboard-api/searches/{quote(search.id, safe='')}"
    return page(
        request,
        "search.html",
        user,
        search=search,
        best=best,
        may_change=may_change,
        summary=search_summary(search, store.clock()),
        plot_cap=data.PLOT_BEST + data.PLOT_RANDOM,
        prefetch=[
            api + "/rows?since=0",
            api + "/table?page=1&size=25&sort=number&desc=false",
            api + "/sample",
        ],
    )


@router.get("/trials/{trial_id}")
def trial_page(trial_id: str, request: Request, store: StoreDep, user: PageUser) -> Response:
    try:
        trial = owned_trial(store, user, trial_id)
    except NotFound:
        return not_found(request, user, "trial")
    search = store.get_search(trial.search_id)
    metrics = trial.metrics or {}
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    matrices = {k: v for k, v in metrics.items() if k.endswith("confusion_matrix") and isinstance(v, list)}
    per_class = {k: v for k, v in metrics.items() if k.endswith("per_class") and isinstance(v, dict)}
    others = {
        k: v for k, v in metrics.items() if k not in scalars and k not in matrices and k not in per_class
    }
    plots = {"history": trial.history or [], "matrices": matrices, "per_class": per_class}
    return page(
        request,
        "trial.html",
        user,
        trial=trial,
        search=search,
        scalars=scalars,
        per_class=per_class,
        others=others,
        plots=plots,
        provenance={k: v for k, v in trial.info.items() if k != "reported_token"},
    )


MAX_COMPARED = 5


@router.get("/compare")
def compare_page(
    request: Request,
    store: StoreDep,
    user: PageUser,
    trials: Annotated[str, Query(max_length=MAX_COMPARED * 70)] = "",
) -> Response:
    """Two to five trials side by side: configuration (differences marked), metrics, curves overlaid."""
    from hyperhive.service.flatten import flatten, scalar_metrics

    ids = list(dict.fromkeys(t.strip() for t in trials.split(",") if t.strip()))
    if not 2 <= len(ids) <= MAX_COMPARED:
        return page(
            request,
            "error.html",
            user,
            400,
            title="Cannot compare",
            message=f"Compare takes 2 to {MAX_COMPARED} different trial ids, /compare?trials=ID,ID "
            f"(got {len(ids)}).",
        )
    try:
        chosen = [owned_trial(store, user, tid) for tid in ids]
    except NotFound:
        return not_found(request, user, "trial")
    searches = {t.search_id: store.get_search(t.search_id) for t in chosen}
    configs = [flatten(t.config or {}) for t in chosen]
    metrics = [scalar_metrics(t.metrics or {}) for t in chosen]

    def table(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = list(dict.fromkeys(k for c in columns for k in c))
        missing = object()
        out = []
        for k in keys:
            values = [c.get(k, missing) for c in columns]
            shown = ["—" if v is missing else "null" if v is None else v for v in values]
            out.append({"key": k, "cells": shown, "differs": len({repr(v) for v in values}) > 1})
        return out

    curves = [
        {
            "label": f"#{t.number} {searches[t.search_id].name}",
            "metric": searches[t.search_id].objective_metric,
            "history": t.history or [],
        }
        for t in chosen
    ]
    return page(
        request,
        "compare.html",
        user,
        trials=chosen,
        searches=searches,
        config_rows=table(configs),
        metric_rows=table([{k: v for k, v in m.items()} for m in metrics]),
        curves=curves,
    )


@router.get("/workers")
def workers_page(request: Request, store: StoreDep, settings: SettingsDep, user: PageUser) -> Response:
    now = store.clock()
    visible: dict[str, bool] = {}
    rows = []
    for w in store.list_workers():
        tid = w.current_trial_id
        show = user.admin
        if not show and tid is not None:
            if tid not in visible:
                try:
                    visible[tid] = may_see(user, store.get_search(store.get_trial(tid).search_id).owner)
                except NotFound:
                    visible[tid] = False
            show = visible[tid]
        alive = w.is_alive(now, settings.worker_timeout_seconds)
        rows.append({"w": w, "trial": tid if show else None, "alive": alive, "ago": now - w.last_seen})
    return page(request, "workers.html", user, rows=rows)
