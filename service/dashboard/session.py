"""Dashboard sign-in: an API token exchanged for a session cookie, and the cross-site request guard.

The cookie (``hyperhive_session``) holds the API token itself, ``HttpOnly`` (page scripts cannot read it),
``SameSite=Strict`` (never sent on cross-site requests) and ``Secure`` over HTTPS. The server keeps no
session state: every request checks the token with :meth:`Store.authenticate`, so revoking the token
signs its sessions out at once, and any number of API processes share the sessions.

State-changing dashboard requests (cancel, extend) must carry ``X-CSRF-Token`` (a hash of the session
token, put in the page) and, when the browser sends ``Origin``, an Origin equal to this server's. A
custom header cannot be sent cross-site without a CORS preflight that this server does not grant.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from hyperhive.models import TokenInfo
from hyperhive.service.deps import LOCAL_USER, SettingsDep, StoreDep

COOKIE = "hyperhive_session"
COOKIE_MAX_AGE = 7 * 24 * 3600
CSRF_HEADER = "x-csrf-token"


def session_secret(request: Request) -> str | None:
    secret = request.cookies.get(COOKIE, "").strip()
    return secret or None


def session_user(request: Request, store: StoreDep, settings: SettingsDep) -> TokenInfo | None:
    """Who the session cookie belongs to; :data:`LOCAL_USER` with ``no_auth``; else ``None``."""
    secret = session_secret(request)
    if secret is not None and len(secret) <= 512:
        info = store.authenticate(secret)
        if info is not None:
            return info
    return LOCAL_USER if settings.no_auth else None


MaybeUser = Annotated[TokenInfo | None, Depends(session_user)]


def data_user(user: MaybeUser) -> TokenInfo:
    """The signed-in user of a data request (401 without a session)."""
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="not signed in: open /login")
    return user


DataUser = Annotated[TokenInfo, Depends(data_user)]


def csrf_token(request: Request) -> str:
    """The token a page must echo in ``X-CSRF-Token``: bound to the session's API token."""
    secret = session_secret(request) or "no-auth"
    return hashlib.sha256(b"hyperhive-dashboard-csrf:" + secret.encode()).hexdigest()


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (when sent) is this server's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def check_origin(request: Request) -> None:
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-site request refused (Origin mismatch)")


def check_csrf(request: Request) -> None:
    """403 unless the request is same-origin and carries this session's CSRF token."""
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(request).encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong X-CSRF-Token header")


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in (never another site: no ``//host`` or ``/\\host``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 2000:
        return "/"
    return target
