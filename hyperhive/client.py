"""A small Python client for the Hyperhive REST API (the ``hyperhive`` CLI uses it).

>>> from hyperhive.client import Client
>>> with Client("http://127.0.0.1:8000", token="hh_...") as hh:       # doctest: +SKIP
...     search = hh.submit(open("search.yaml").read())
...     hh.get_search(search["id"])["status"]

Every method returns the server's JSON (dicts and lists) and raises :class:`ClientError` for any HTTP
error (``status`` and the server's ``detail``) or when the server cannot be reached (``status`` 0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

YAML_CONTENT_TYPE = "application/yaml"


class ClientError(Exception):
    """An API call failed: ``status`` (0 when no HTTP answer came) and the server's ``detail``."""

    def __init__(self, status: int, detail: Any, url: str = "") -> None:
        self.status = status
        self.detail = detail
        self.url = url
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One readable line (validation errors joined as ``path: msg; ...``)."""
        detail = self.detail
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    where = item.get("path") or ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{where or '<document>'}: {item.get('msg', item)}")
                else:
                    parts.append(str(item))
            detail = "; ".join(parts)
        if self.status == 0:
            return str(detail)
        return f"HTTP {self.status}: {detail}"


class Client:
    """Calls the API at ``url`` with the bearer ``token`` (``None`` for a ``--no-auth`` server)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "hyperhive-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One call; :class:`ClientError` unless the answer is 2xx."""
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.ConnectError as exc:
            raise ClientError(
                0, f"cannot connect to {self.url}: is the server running? ({exc})", self.url
            ) from None
        except httpx.TimeoutException:
            raise ClientError(0, f"{self.url} did not answer in time", self.url) from None
        except httpx.HTTPError as exc:
            raise ClientError(0, f"request to {self.url}{path} failed: {exc}", self.url) from None
        if resp.is_success:
            return resp
        try:
            detail = resp.json().get("detail", resp.text)
        except (ValueError, AttributeError):
            detail = resp.text.strip() or resp.reason_phrase
        raise ClientError(resp.status_code, detail, self.url)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()

    # ------------------------------------------------------------------ searches
    def submit(self, document: str | bytes | dict[str, Any], fmt: str | None = None) -> dict[str, Any]:
        """Submit a search: a mapping (sent as JSON) or its text; ``fmt`` ``yaml`` | ``json`` | None
        (detected here: JSON when the text is a JSON object, else YAML; the server reads only bodies that
        say their content type). Returns the created search."""
        if isinstance(document, dict):
            return self._json("POST", "/api/searches", json=document)
        content = document.encode("utf-8") if isinstance(document, str) else document
        if fmt is None:
            fmt = "json" if _is_json_object(content) else "yaml"
        ctype = {"yaml": YAML_CONTENT_TYPE, "json": "application/json"}.get(fmt, YAML_CONTENT_TYPE)
        return self._json("POST", "/api/searches", content=content, headers={"Content-Type": ctype})

    def submit_script(self, script: str | bytes, **fields: Any) -> dict[str, Any]:
        """Submit a Hyperas script (``text/x-python``); ``fields``: name, max_trials, algorithm, seed, mode,
        ... (the document's other fields; None values are left out). Needs a token that may submit code."""
        content = script.encode("utf-8") if isinstance(script, str) else script
        return self._json(
            "POST",
            "/api/searches",
            content=content,
            params=_clean(fields),
            headers={"Content-Type": "text/x-python"},
        )

    def submit_file(self, path: str | Path) -> dict[str, Any]:
        """Submit a ``.yaml``/``.yml``/``.json`` file (other suffixes: JSON if the text is a JSON object,
        else YAML)."""
        p = Path(path)
        fmt = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(p.suffix.lower())
        return self.submit(p.read_bytes(), fmt)

    def list_searches(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page: ``{"items": [...], "total", "limit", "offset"}``."""
        params = {"status": status, "name": name, "owner": owner, "limit": limit, "offset": offset}
        return self._json("GET", "/api/searches", params=_clean(params))

    def get_search(self, search_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/searches/{search_id}")

    def trials(
        self,
        search_id: str,
        *,
        state: str | None = None,
        sort: str = "number",
        order: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of a search's trials."""
        params = {"state": state, "sort": sort, "order": order, "limit": limit, "offset": offset}
        return self._json("GET", f"/api/searches/{search_id}/trials", params=_clean(params))

    def best(self, search_id: str) -> dict[str, Any]:
        """The best done trial in full (``ClientError`` 404 while none is done)."""
        return self._json("GET", f"/api/searches/{search_id}/best")

    def trial(self, trial_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/trials/{trial_id}")

    def cancel(self, search_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/searches/{search_id}/cancel")

    def extend(self, search_id: str, n: int) -> dict[str, Any]:
        return self._json("POST", f"/api/searches/{search_id}/extend", json={"n": n})

    def delete(self, search_id: str) -> None:
        self.request("DELETE", f"/api/searches/{search_id}")

    def export(self, search_id: str, fmt: str = "csv") -> str:
        """The export as text: CSV, or the JSON bundle (``json.loads`` it)."""
        return self.request("GET", f"/api/searches/{search_id}/export", params={"format": fmt}).text

    # ------------------------------------------------------------------ datasets, workers, health
    def upload_dataset(self, path: str | Path, name: str | None = None) -> dict[str, Any]:
        """Upload an ``.npz``; returns its record (use ``{"upload": record["id"]}`` as the dataset)."""
        p = Path(path)
        with p.open("rb") as f:
            files = {"file": (p.name, f, "application/octet-stream")}
            data = {"name": name} if name else {}
            return self._json("POST", "/api/datasets", files=files, data=data, timeout=None)

    def datasets(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/datasets")

    def workers(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/workers")

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``{"id", "name", "admin"}``."""
        return self._json("GET", "/api/me")

    # ------------------------------------------------------------------ quotas (admins)
    def quotas(self) -> dict[str, Any]:
        """``{"defaults": {...}, "overrides": {owner: {...}}}``."""
        return self._json("GET", "/api/quotas")

    def quota(self, owner: str) -> dict[str, Any]:
        """One user's limits, override and usage."""
        return self._json("GET", f"/api/quotas/{quote(owner, safe='')}")

    def set_quota(self, owner: str, limits: dict[str, int | None]) -> dict[str, Any]:
        """Replace the user's override with ``limits`` (``None``: unlimited)."""
        return self._json("PUT", f"/api/quotas/{quote(owner, safe='')}", json=limits)

    def delete_quota(self, owner: str) -> None:
        self.request("DELETE", f"/api/quotas/{quote(owner, safe='')}")

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/healthz")

    def ready(self) -> bool:
        """Whether the server answers and reaches its store."""
        try:
            self.request("GET", "/readyz")
        except ClientError:
            return False
        return True


def _is_json_object(content: bytes) -> bool:
    try:
        return isinstance(json.loads(content), dict)
    except (ValueError, RecursionError):
        return False


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def dumps(value: Any) -> str:
    """JSON for ``--json`` output: indented, keys kept in server order."""
    return json.dumps(value, indent=2)
