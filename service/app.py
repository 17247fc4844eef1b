"""The FastAPI application: :func:`create_app`.

One app holds one store (``app.state.store``) and one :class:`~hyperhive.settings.Settings`
(``app.state.settings``). Routes are sync functions run in FastAPI's thread pool (the store is
thread-safe), except those that stream a request body.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

import hyperhive
from hyperhive.service import NO_AUTH_WARNING
from hyperhive.service.dashboard import install_dashboard
from hyperhive.service.errors import install_error_handlers
from hyperhive.service.http_policy import HttpPolicy, allowed_hosts
from hyperhive.service.middleware import RequestGuard
from hyperhive.service.routes import datasets, health, quotas, searches, trials, workers
from hyperhive.settings import Settings, get_settings
from hyperhive.store import open_store
from hyperhive.store.base import Store

log = logging.getLogger("hyperhive.service")

DESCRIPTION = """Submit hyperparameter searches for Keras image classifiers and follow their trials.

Every `/api` route needs `Authorization: Bearer <token>` (create one with `hyperhive token create NAME`).
A user sees only their own searches and datasets; an admin token sees all.
"""


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The API over ``store`` (opened from ``settings.store`` when not given, and then closed when the app
    shuts down; a store passed in stays the caller's to close)."""
    settings = settings or get_settings()
    owns_store = store is None
    the_store = store if store is not None else open_store(settings.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.no_auth:
            log.warning(NO_AUTH_WARNING)
        # Everything imported so far lives as long as the process: out of the cyclic collector's
        # sight, a full collection no longer walks ~140,000 objects (300 ms in the middle of a
        # request reading a 10,000-trial search for the dashboard).
        gc.freeze()
        try:
            yield
        finally:
            app.state.dashboard_importance.close()  # before the store closes under it
            if owns_store:
                the_store.close()

    # Swagger UI's scripts served from the installed package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="Hyperhive",
        version=hyperhive.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = the_store
    install_error_handlers(app)
    for module in (searches, trials, datasets, workers, health, quotas):
        app.include_router(module.router)
    # Inside RequestGuard (request id, access line, size limits): Host allow-list, content types, Origin.
    app.add_middleware(HttpPolicy, hosts=allowed_hosts(settings), cors_origins=settings.cors_origins)
    install_dashboard(app)
    app.add_middleware(
        RequestGuard,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
