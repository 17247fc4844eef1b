"""``/healthz`` (the process answers) and ``/readyz`` (the store answers), both without a token; and
``/api/me`` (who the token belongs to)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import hyperhive
from hyperhive.errors import StoreUnavailable
from hyperhive.service.deps import CurrentUser, StoreDep
from hyperhive.service.schemas import Health, TokenPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """200 while the server process answers."""
    return Health(status="ok", version=hyperhive.__version__)


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "the store cannot be reached"}},
)
def readyz(store: StoreDep) -> Health | JSONResponse:
    """200 when the store answers a ping, else 503."""
    try:
        store.ping()
    except StoreUnavailable:
        return JSONResponse({"status": "unavailable", "version": hyperhive.__version__}, status_code=503)
    return Health(status="ready", version=hyperhive.__version__)


@router.get("/api/me", response_model=TokenPublic, tags=["tokens"])
def me(user: CurrentUser) -> TokenPublic:
    """The token's name (the user) and whether it is an admin."""
    return TokenPublic.from_token(user)
