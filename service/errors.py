"""One HTTP status per Hyperhive error, and validation errors in FastAPI's ``{loc, msg}`` shape.

==========================  ======
``NotFound``                404
``Conflict``, ``LeaseLost`` 409
``QuotaExceeded``           403 (``quota exceeded: <which>: <used>/<limit>``)
``SpecError``               422 (every error, each with ``loc`` parts and the dotted ``path``)
request validation          422 (FastAPI's ``{loc, msg, input}``, inputs made JSON-safe)
``StoreUnavailable``        503
anything else               500 ``{"detail": "internal error", "request_id": ...}`` (see middleware)
==========================  ======
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hyperhive.errors import Conflict, LeaseLost, NotFound, QuotaExceeded, StoreUnavailable
from hyperhive.store.base import json_safe

log = logging.getLogger("hyperhive.service")

DOCUMENT_LOC = "<document>"
_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def loc_parts(path: str, root: str = "body") -> list[str | int]:
    """A document path (``model.layers[3].rate``, ``a["odd key"]``, ``<document>``) as FastAPI-style
    ``loc`` parts under ``root``: ``["body", "model", "layers", 3, "rate"]``. A path that does not
    follow the grammar is kept whole as one part."""
    parts: list[str | int] = [root]
    if not path or path == DOCUMENT_LOC:
        return parts
    pos, out = 0, []
    while pos < len(path):
        m = _PART.match(path, pos)
        if m is None or m.end() == pos:
            return [root, path]
        ident, index, quoted = m.groups()
        if ident is not None:
            out.append(ident)
        elif index is not None:
            out.append(int(index))
        else:
            out.append(json.loads(quoted))
        pos = m.end()
    return parts + out


def spec_error_items(exc: Any) -> list[dict[str, Any]]:
    """``SpecError.errors`` as response items: ``{"loc": [...], "path": "...", "msg": "...", "type"}``."""
    return [
        {"loc": loc_parts(e.loc), "path": e.loc, "msg": e.msg, "type": "spec_error"}
        for e in getattr(exc, "errors", [])
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map Hyperhive's errors to statuses on ``app`` (the catch-all 500 is the middleware's)."""
    from hyperhive.search_spaces import SpecError

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def quota_exceeded(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return JSONResponse({"detail": "the store is unavailable; retry later"}, status_code=503)

    async def spec_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": spec_error_items(exc)}, status_code=422)

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler echoes the offending input; JSON bodies may hold Infinity or NaN,
        # which a JSON response cannot carry, so echo inputs made JSON-safe.
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=422)

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(LeaseLost, conflict)
    app.add_exception_handler(QuotaExceeded, quota_exceeded)
    app.add_exception_handler(StoreUnavailable, unavailable)
    app.add_exception_handler(SpecError, spec_error)
    app.add_exception_handler(RequestValidationError, request_validation)
