"""What a browser may make this server do: Host allow-list, request content types and Origin.

A web page can make any browser send "simple" requests to ``http://127.0.0.1:8000`` without a CORS
preflight: a POST whose body is ``text/plain``, a form (``application/x-www-form-urlencoded``,
``multipart/form-data``) or no body at all. And a page on a name the attacker controls can point that
name at 127.0.0.1 (DNS rebinding), making the server same-origin to it. With tokens on, neither gets
anywhere (a page cannot attach an ``Authorization`` header without a preflight); with ``--no-auth``
both would reach every route. So, for every request:

- **Host** must be in :func:`allowed_hosts`: 127.0.0.1, localhost, [::1], the configured ``host``
  (for a wildcard bind, this machine's host name) and ``Settings.allowed_hosts``
  (``HYPERHIVE_ALLOWED_HOSTS``: names a deployment is reached by; ``*.example.com`` matches its
  subdomains, ``*`` anything). Otherwise 400 ``host not allowed``. The health probes ``/healthz`` and
  ``/readyz`` answer any Host (load balancers probe by address).
- A request with a **body** (POST, PUT, PATCH, DELETE) must say a content type the route reads:
  :data:`BODY_TYPES` (JSON, YAML), or for a dataset upload :data:`UPLOAD_TYPES`, or for a search
  also ``text/x-python`` (a Hyperas script; sent cross-site only after a preflight); anything else,
  and a body without a content type, is 415. A bodiless request may name no content type.
- A state-changing request that carries an **Origin** (browsers send it; the CLI and the Python
  client do not) must come from this server's own origin or one of ``Settings.cors_origins``;
  otherwise 403. This closes the bodiless POSTs (``/cancel``) and form uploads.

Starlette's ``TrustedHostMiddleware`` matches hosts the same way but answers in plain text and
redirects to ``www.``; this module answers JSON ``{"detail": ...}`` like every other error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from hyperhive.service.middleware import ASGIApp, Receive, Scope, Send
from hyperhive.service.uploads import RAW_TYPES
from hyperhive.settings import Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
BODY_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
"""Content types of every request body except uploads (a search document, ``{"n": 5}``)."""
UPLOAD_TYPES = ("multipart/form-data", *RAW_TYPES)
"""Content types of a dataset upload (``POST /api/datasets``)."""
UPLOAD_PATHS = ("/api/datasets",)
SCRIPT_TYPES = ("text/x-python",)
"""Content type of a Hyperas script submitted as a search (``POST /api/searches``, besides BODY_TYPES)."""
SCRIPT_PATHS = ("/api/searches",)
FORM_TYPES = ("application/x-www-form-urlencoded",)
"""Content type of the dashboard's sign-in form (``POST /login``; its Origin is checked like any other)."""
FORM_PATHS = ("/login",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def _host_literal(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if ":" in host and not host.startswith("["):  # a bare IPv6 address, as Host headers bracket it
        return f"[{host}]"
    return host


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host names (and ``*.domain`` patterns) the API answers, from the settings."""
    hosts = [*LOOPBACK_HOSTS]
    bind = settings.host.strip().lower()
    if bind in WILDCARD_BINDS:
        hosts.append(socket.gethostname().lower())
    else:
        hosts.append(_host_literal(bind))
    hosts += [_host_literal(h) for h in settings.allowed_hosts if h.strip()]
    return list(dict.fromkeys(hosts))


def host_of(header: str | None) -> str | None:
    """The host part of a Host header (``[::1]:8000`` -> ``[::1]``), lower case; None if malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or not (header[end + 1 :] == "" or header[end + 1 :].startswith(":")):
            return None
        return header[: end + 1]
    host = header.rsplit(":", 1)[0] if ":" in header else header
    return host.rstrip(".") or None


def host_allowed(host: str | None, patterns: Iterable[str]) -> bool:
    """Whether ``host`` (from :func:`host_of`) matches one of ``patterns``."""
    if host is None:
        return False
    for pattern in patterns:
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _has_body(headers: Headers) -> bool:
    if "transfer-encoding" in headers:
        return True
    try:
        return int(headers.get("content-length", "0") or "0") > 0
    except ValueError:
        return True


class HttpPolicy:
    """Pure ASGI middleware applying the rules of the module docstring."""

    def __init__(self, app: ASGIApp, *, hosts: list[str], cors_origins: list[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.cors_origins = {o.rstrip("/").lower() for o in cors_origins}

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, detail)`` when the request is refused, else None."""
        headers = Headers(scope=scope)
        path = str(scope.get("path", ""))
        host_header = headers.get("host")
        if path not in PROBE_PATHS and not host_allowed(host_of(host_header), self.hosts):
            return 400, (
                f"host not allowed: {host_header!r}; the operator lists the names this server is reached "
                "by in HYPERHIVE_ALLOWED_HOSTS"
            )
        method = str(scope.get("method", "GET")).upper()
        if method not in UNSAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and not self._same_or_allowed_origin(origin, host_header):
            return 403, (
                f"cross-site request refused: Origin {origin!r} is neither this server nor one of its "
                "cors_origins"
            )
        media_type = _media_type(headers)
        accepted: tuple[str, ...] = BODY_TYPES
        if method == "POST" and path.rstrip("/") in UPLOAD_PATHS:
            accepted = UPLOAD_TYPES
        elif method == "POST" and path.rstrip("/") in FORM_PATHS:
            accepted = FORM_TYPES
        elif method == "POST" and path.rstrip("/") in SCRIPT_PATHS:
            accepted = (*BODY_TYPES, *SCRIPT_TYPES)
        if media_type == "" and not _has_body(headers):
            return None
        if media_type not in accepted:
            shown = repr(media_type) if media_type else "none"
            return 415, f"unsupported content type {shown}; send one of {', '.join(accepted)}"
        return None

    def _same_or_allowed_origin(self, origin: str, host_header: str | None) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.cors_origins or "*" in self.cors_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == (host_header or "").strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, detail = refused
        response: Any = JSONResponse({"detail": detail}, status_code=status)
        await response(scope, receive, send)
