"""All of Hyperhive's settings in one typed object, read from flags, the environment and defaults.

Environment variables carry the ``HYPERHIVE_`` prefix: ``HYPERHIVE_STORE``, ``HYPERHIVE_URL``,
``HYPERHIVE_TOKEN``, ``HYPERHIVE_HOST``, ``HYPERHIVE_PORT``, ... Command-line flags override them.
``HYPERHIVE_ALLOW_OBJECTIVE`` is a comma-separated list of module prefixes, added to the default one.
A bad value is one :class:`BadSettings` line naming the variable, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from hyperhive.errors import HyperhiveError
from hyperhive.models import DEFAULT_LEASE_SECONDS

if TYPE_CHECKING:
    from hyperhive.quotas import Limits

DEFAULT_HOME = Path(".hyperhive")
DEFAULT_STORE = f"sqlite:///{DEFAULT_HOME / 'hyperhive.db'}"
DEFAULT_OBJECTIVE_MODULES = ("hyperhive.demo_objectives",)
LAUNCHER_ENV = "HYPERHIVE_WORKER_LAUNCHER"
"""Set by ``hyperhive up``/``run`` for their workers (``up`` or ``run``), so that a worker's messages
name the command and flag its user can change (e.g. ``hyperhive up --allow-objective mypkg``)."""
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class BadSettings(HyperhiveError, ValueError):
    """A setting from the environment or a flag has a bad value (one line, naming the variable)."""


def parse_objective_prefixes(v: Any) -> list[str]:
    """``"a, b.c"``, ``'["a"]'`` or ``["a", "b.c"]`` -> the defaults plus ``a`` and ``b.c``.
    ValueError when an entry is not a dotted module name."""
    if isinstance(v, str) and v.lstrip().startswith("["):
        try:
            v = json.loads(v)
        except ValueError:
            raise ValueError("not a JSON list of module names") from None
    items = v.split(",") if isinstance(v, str) else list(v or [])
    prefixes = [str(p).strip().rstrip(".") for p in items if str(p).strip()]
    bad = [p for p in prefixes if not _MODULE.match(p)]
    if bad:
        raise ValueError(f"not a module name: {', '.join(map(repr, bad))} (give e.g. mypkg,other.module)")
    return list(dict.fromkeys([*DEFAULT_OBJECTIVE_MODULES, *prefixes]))


class Settings(BaseSettings):
    """Hyperhive's settings. Every field can be set as ``HYPERHIVE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="HYPERHIVE_", extra="ignore")

    # where the data lives
    store: str = Field(DEFAULT_STORE, description="store URL: sqlite:///path.db or mongodb://...")
    home: Path = Field(DEFAULT_HOME, description="folder for the embedded store, caches and logs")

    # the API client (CLI)
    url: str = Field("http://127.0.0.1:8000", description="base URL of a Hyperhive API server")
    token: SecretStr | None = Field(None, description="API token for the client")

    # the API server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    no_auth: bool = Field(False, description="serve without authentication (a laptop only)")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins; none = off")
    max_request_bytes: int = Field(1 << 20, ge=1024, description="largest JSON/YAML request body")
    max_upload_bytes: int = Field(512 << 20, ge=1024, description="largest dataset upload")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers besides 127.0.0.1, localhost, [::1] and host "
        "(comma-separated in HYPERHIVE_ALLOWED_HOSTS; '*.example.com' for subdomains, '*' for any)",
    )

    # per-user quotas (hyperhive.quotas): defaults for every non-admin user; an admin overrides them per
    # user with `hyperhive quota set`. "none" (or "unlimited") lifts a limit.
    quota_max_running_searches: int | None = Field(
        100, ge=0, description="searches pending or running at once, per user"
    )
    quota_max_stored_bytes: int | None = Field(
        50 << 30, ge=0, description="dataset uploads + search documents + trial estimate, per user"
    )
    quota_max_trials: int | None = Field(
        1_000_000, ge=0, description="sum of max_trials over the searches a user keeps"
    )
    # uploaded datasets: what reading one may cost (API) and what loading it may cost (workers)
    max_upload_ratio: float = Field(
        1000.0, ge=1.0, description="refuse an .npz member that decompresses to more than this x its size"
    )
    max_dataset_bytes: int = Field(
        2 << 30, ge=1 << 20, description="refuse a dataset larger than this once decoded to float32"
    )
    max_dataset_labels: int = Field(10_000_000, ge=1, description="most labels (samples) in an upload")
    max_dataset_classes: int = Field(10_000, ge=2, description="most classes in an uploaded dataset")

    # workers
    lease_seconds: float = Field(
        DEFAULT_LEASE_SECONDS, gt=1.0, description="a claimed trial's lease; heartbeats renew it"
    )
    heartbeat_seconds: float = Field(10.0, gt=0.0, description="interval between a worker's heartbeats")
    worker_timeout_seconds: float = Field(90.0, gt=0.0, description="a worker unseen this long is lost")
    allow_objective: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OBJECTIVE_MODULES),
        description="module prefixes whose functions workers may run as objectives, added to the "
        "default hyperhive.demo_objectives (comma-separated in the environment)",
    )
    data_cache: Path | None = Field(None, description="where workers cache datasets (default home/data)")

    @field_validator("store")
    @classmethod
    def _store_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the store URL is empty")
        return v.strip()

    @field_validator("allow_objective", mode="before")
    @classmethod
    def _objective_prefixes(cls, v: Any) -> list[str]:
        return parse_objective_prefixes(v)

    @field_validator(
        "quota_max_running_searches", "quota_max_stored_bytes", "quota_max_trials", mode="before"
    )
    @classmethod
    def _unlimited(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in ("", "none", "null", "unlimited"):
            return None
        return v

    @property
    def quota_defaults(self) -> Limits:
        """The quota limits of a user without an admin's override."""
        from hyperhive.quotas import Limits

        return Limits(self.quota_max_running_searches, self.quota_max_stored_bytes, self.quota_max_trials)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: Any) -> Any:
        """``a.example.com, b.example.com`` or a JSON list; ``[::1]`` alone is a host, not JSON."""
        if not isinstance(v, str):
            return v
        if v.strip().startswith('["'):
            return json.loads(v)
        return [h.strip() for h in v.split(",") if h.strip()]

    @property
    def data_dir(self) -> Path:
        return self.data_cache or self.home / "data"


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment with the given (non-None) overrides, e.g. from CLI flags.
    :class:`BadSettings` (one line naming each bad setting and its variable) on a bad value."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(str(e['loc'][0]) if e['loc'] else '')}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise BadSettings(f"bad setting {problems}") from None
    except SettingsError as exc:  # a value the environment source could not even decode
        raise BadSettings(f"bad setting: {exc}") from None


def _where(field: str) -> str:
    return f"{field} (HYPERHIVE_{field.upper()} or --{field.replace('_', '-')})" if field else "settings"
