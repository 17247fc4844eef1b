"""``/api/quotas``: per-user quotas (see :mod:`hyperhive.quotas`). Admins read and set every user's;
a user may read their own (``GET /api/quotas/{own name}``); anyone else's answers 403.

``PUT /api/quotas/{owner}`` replaces the user's override with the limits the body names (an integer
>= 0, or ``null`` for unlimited); limits it leaves out follow the server's defaults
(``HYPERHIVE_QUOTA_*``). ``DELETE`` removes the override. A request over a quota answers 403
``quota exceeded: <which>: <used>/<limit>``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from hyperhive.models import TokenInfo
from hyperhive.service.deps import AdminUser, CurrentUser, SettingsDep, StoreDep
from hyperhive.service.quotas import limits_for

router = APIRouter(prefix="/api/quotas", tags=["quotas"])

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {403: {"description": "this needs an admin token"}}


class QuotaLimits(BaseModel):
    """Limits; ``null`` is unlimited."""

    max_running_searches: int | None = Field(None, ge=0, description="searches pending or running at once")
    max_stored_bytes: int | None = Field(
        None, ge=0, description="dataset uploads + search documents + an estimate per trial started"
    )
    max_trials: int | None = Field(None, ge=0, description="sum of max_trials over the searches kept")


class QuotaOverride(QuotaLimits):
    """An admin's override: only the limits it names replace the defaults."""

    model_config = ConfigDict(extra="forbid")


class QuotaUsage(BaseModel):
    running_searches: int
    stored_bytes: int
    trials: int


class QuotaPublic(BaseModel):
    """One user's quota: the limits that apply, the admin's override (``null``: none), and usage."""

    owner: str
    limits: QuotaLimits
    override: dict[str, int | None] | None
    usage: QuotaUsage


class QuotaList(BaseModel):
    defaults: QuotaLimits
    overrides: dict[str, dict[str, int | None]]


def _public(store: StoreDep, settings: SettingsDep, owner: str) -> QuotaPublic:
    return QuotaPublic(
        owner=owner,
        limits=QuotaLimits(**limits_for(store, settings, owner).to_dict()),
        override=store.get_quota(owner),
        usage=QuotaUsage(**store.usage(owner).to_dict()),
    )


@router.get("", response_model=QuotaList, responses=ADMIN_ONLY)
def list_quotas(store: StoreDep, settings: SettingsDep, admin: AdminUser) -> QuotaList:
    """The server's default limits and every user's override."""
    return QuotaList(defaults=QuotaLimits(**settings.quota_defaults.to_dict()), overrides=store.list_quotas())


@router.get("/{owner}", response_model=QuotaPublic, responses=ADMIN_ONLY)
def get_quota(owner: str, store: StoreDep, settings: SettingsDep, user: CurrentUser) -> QuotaPublic:
    """A user's limits, override and usage (admins: anyone's; a user: their own)."""
    _may_read(user, owner)
    return _public(store, settings, owner)


def _may_read(user: TokenInfo, owner: str) -> None:
    if not user.admin and owner != user.name:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs an admin token")


@router.put("/{owner}", response_model=QuotaPublic, responses=ADMIN_ONLY)
def set_quota(
    owner: str, body: QuotaOverride, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> QuotaPublic:
    """Replace a user's override with the limits the body names (``null``: unlimited)."""
    store.set_quota(owner, {k: getattr(body, k) for k in sorted(body.model_fields_set)})
    return _public(store, settings, owner)


@router.delete(
    "/{owner}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**ADMIN_ONLY, 404: {"description": "no override for this user"}},
)
def delete_quota(owner: str, store: StoreDep, admin: AdminUser) -> Response:
    """Remove a user's override: the server's defaults apply again."""
    store.delete_quota(owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
