"""The routes' dependencies as ``Annotated`` aliases: the store, the settings and who is asking.

Identity and ownership
    A request is made by the holder of a bearer token (``Authorization: Bearer <token>``); the token's
    **name** is the user. Records a user creates carry that name as their ``owner``, so a user may hold
    several tokens (one per machine, or a new one before revoking the old) and keeps their searches. Token
    names are therefore identities: give each person their own. A user sees and changes only what they
    own; an admin token sees and changes everything. Someone else's record answers 404, exactly like a
    missing one, so that ids do not leak.

    With ``no_auth`` every request without a valid token is the synthetic admin ``local``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hyperhive.errors import NotFound
from hyperhive.models import Search, TokenInfo, Trial
from hyperhive.settings import Settings
from hyperhive.store.base import Store

LOCAL_USER = TokenInfo(id="local", name="local", admin=True, created_at=0.0)
"""Who every request is with ``--no-auth`` (unless it brings a valid token)."""

_bearer = HTTPBearer(auto_error=False, description="an API token from `hyperhive token create`")


# The dependencies that do no I/O are ``async``: FastAPI runs a sync dependency in its thread pool, and
# under load every hop to a thread and back costs more than what these do (benchmarks/load.py).
async def get_store(request: Request) -> Store:
    """The store the app holds (opened once at startup, closed at shutdown)."""
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=msg, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    """The live token making the request; 401 (with ``WWW-Authenticate: Bearer``) when it is missing,
    malformed, unknown or revoked. With ``no_auth``, :data:`LOCAL_USER` instead of a 401. Only a token
    is looked up, in the thread pool (a store read may wait on a lock). The store and settings are read
    off the app here rather than as sub-dependencies: every route depends on this one, and each
    dependency FastAPI resolves costs more than what these do (benchmarks/load.py)."""
    settings: Settings = request.app.state.settings
    if credentials is None or not credentials.credentials.strip():
        if settings.no_auth:
            return LOCAL_USER
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    store: Store = request.app.state.store
    info = await run_in_threadpool(store.authenticate, credentials.credentials.strip())
    if info is None:
        if settings.no_auth:
            return LOCAL_USER
        raise _unauthorized("invalid or revoked token")
    return info


CurrentUser = Annotated[TokenInfo, Depends(current_user)]


async def admin_user(user: CurrentUser) -> TokenInfo:
    """The current user, who must be an admin (403 otherwise)."""
    if not user.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs an admin token")
    return user


AdminUser = Annotated[TokenInfo, Depends(admin_user)]


def may_see(user: TokenInfo, owner: str | None) -> bool:
    """Whether ``user`` may see a record owned by ``owner`` (admins see everything)."""
    return user.admin or owner == user.name


def owned_search(store: Store, user: TokenInfo, search_id: str) -> Search:
    """The search if ``user`` may see it, else :class:`NotFound` (also for other users' searches)."""
    search = store.get_search(search_id)
    if not may_see(user, search.owner):
        raise NotFound("search", search_id)
    return search


def owned_trial(store: Store, user: TokenInfo, trial_id: str) -> Trial:
    """The trial if ``user`` may see its search, else :class:`NotFound`."""
    return owned_trial_and_search(store, user, trial_id)[0]


def owned_trial_and_search(store: Store, user: TokenInfo, trial_id: str) -> tuple[Trial, Search]:
    """The trial and its search if ``user`` may see the search, else :class:`NotFound` (naming the trial)."""
    trial = store.get_trial(trial_id)
    try:
        search = owned_search(store, user, trial.search_id)
    except NotFound:
        raise NotFound("trial", trial_id) from None
    return trial, search
