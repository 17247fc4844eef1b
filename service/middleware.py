"""The guard around every request: a request id, body-size limits, one access line, and the catch-all.

- Each response carries ``X-Request-ID``; an unhandled exception becomes
  ``500 {"detail": "internal error", "request_id": ...}`` (no stack trace leaves the server) and is
  logged with its traceback under that id.
- Bodies are limited while they stream in: ``max_upload_bytes`` for dataset uploads, ``max_request_bytes``
  for everything else. A ``Content-Length`` over the limit is refused before reading; a body that grows
  past it while streaming raises a 413 :class:`~fastapi.HTTPException` inside whoever is reading it.
- The access line is ``METHOD path status ms request_id``: no headers and no query string, so no token
  is ever logged.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("hyperhive.access")
log = logging.getLogger("hyperhive.service")


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"request body too large: the limit is {limit} bytes")


class RequestGuard:
    """Pure ASGI middleware (see the module docstring). ``upload_paths`` get ``max_upload_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_bytes: int,
        max_upload_bytes: int,
        upload_paths: tuple[str, ...] = ("/api/datasets",),
    ) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = upload_paths

    def limit_for(self, scope: Scope) -> int:
        path = str(scope.get("path", "")).rstrip("/")
        if scope.get("method") == "POST" and path in self.upload_paths:
            return self.max_upload_bytes
        return self.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        limit = self.limit_for(scope)
        seen = 0

        async def guarded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                await _send_json(tagged_send, 413, {"detail": too_large(limit).detail})
                return
            await self.app(scope, guarded_receive, tagged_send)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request_id %s)", scope.get("method"), scope["path"], request_id
            )
            if status == 0:
                await _send_json(tagged_send, 500, {"detail": "internal error", "request_id": request_id})
        finally:
            ms = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %d %.1fms %s", scope.get("method"), scope["path"], status, ms, request_id)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
