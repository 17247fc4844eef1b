"""Per-user quotas: how much one user (a token name, see :mod:`hyperhive.service.deps`) may hold at once.

Three limits, each ``None`` for unlimited:

- ``max_running_searches``: searches ``pending`` or ``running`` (a completed or failed search that an
  extend reopens counts again);
- ``max_stored_bytes``: uploaded dataset bytes (exact) plus the search documents (their JSON) plus an
  estimate of the trials' payloads, :data:`TRIAL_BYTES_ESTIMATE` per trial started (config, metrics and
  history are capped per trial, so a count times a bound is a cheap, honest estimate);
- ``max_trials``: the trial budgets (``max_trials``) of every search the user keeps, final or not:
  deleting a search frees its budget.

The operator's defaults come from :class:`~hyperhive.settings.Settings` (``HYPERHIVE_QUOTA_*``); an admin
may override any of them for one user (the store's ``quotas`` table/collection, keyed by owner name). An
override names only the limits it changes; a limit set to ``None`` there is unlimited for that user.
Admin tokens are not limited. A refused request is :class:`~hyperhive.errors.QuotaExceeded` (HTTP 403,
``quota exceeded: <which>: <used>/<limit>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from hyperhive.errors import QuotaExceeded

QUOTA_FIELDS = ("max_running_searches", "max_stored_bytes", "max_trials")
TRIAL_BYTES_ESTIMATE = 4096
"""What one started trial counts for in ``stored bytes``."""


@dataclass(frozen=True)
class Usage:
    """What a user holds now."""

    running_searches: int = 0
    stored_bytes: int = 0
    trials: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Limits:
    """A user's limits; ``None`` is unlimited."""

    max_running_searches: int | None = None
    max_stored_bytes: int | None = None
    max_trials: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)

    def merged(self, override: Mapping[str, int | None] | None) -> Limits:
        """These limits with the fields an admin's override names replaced."""
        return replace(self, **{k: v for k, v in (override or {}).items() if k in QUOTA_FIELDS})


def check_override(values: Mapping[str, Any]) -> dict[str, int | None]:
    """A quota override as stored: known fields only, each ``None`` or an integer >= 0; otherwise a
    :class:`ValueError` naming the field."""
    if not isinstance(values, Mapping):
        raise ValueError("a quota override must be a mapping of limits")
    out: dict[str, int | None] = {}
    for key, value in values.items():
        if key not in QUOTA_FIELDS:
            raise ValueError(f"{key}: not a quota (known: {', '.join(QUOTA_FIELDS)})")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{key}: must be an integer >= 0 or null for unlimited (got {value!r})")
        out[key] = value
    return out


def check(limits: Limits, usage: Usage, *, searches: int = 0, stored_bytes: int = 0, trials: int = 0) -> None:
    """:class:`QuotaExceeded` (the first limit passed) unless ``usage`` plus what a request adds fits."""
    for which, used, adding, limit in (
        ("running searches", usage.running_searches, searches, limits.max_running_searches),
        ("stored bytes", usage.stored_bytes, stored_bytes, limits.max_stored_bytes),
        ("trials", usage.trials, trials, limits.max_trials),
    ):
        if adding > 0 and limit is not None and used + adding > limit:
            raise QuotaExceeded(which, used, limit, adding=adding)
