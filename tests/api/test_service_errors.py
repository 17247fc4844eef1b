"""Errors: no stack traces in responses, a request id, store outages as 503, tokens never logged,
CORS off unless configured, the OpenAPI docs served."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from servicekit import Users, function_yaml, make_client

from hyperhive.errors import StoreUnavailable
from hyperhive.settings import Settings
from hyperhive.store.base import Store


def test_unexpected_error_is_a_bare_500_with_request_id(
    client: Any, users: Users, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    store.list_searches = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="hyperhive.service"):
        r = client.get("/api/searches", headers=users.alice)
    assert r.status_code == 500
    body = r.json()
    assert body["detail"] == "internal error" and body["request_id"] == r.headers["x-request-id"]
    assert "secret" not in r.text and "Traceback" not in r.text
    # logged server-side, with the traceback and the request id
    record = next(rec for rec in caplog.records if body["request_id"] in rec.getMessage())
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])


def test_store_down_is_503_and_not_ready(client: Any, users: Users, store: Store) -> None:
    def down(*a: Any, **k: Any) -> Any:
        raise StoreUnavailable("connection refused")

    store.ping = down  # type: ignore[method-assign]
    store.get_search = down  # type: ignore[method-assign]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    r = client.get("/api/searches/abc", headers=users.alice)
    assert r.status_code == 503 and "refused" not in r.text


def test_tokens_never_logged(client: Any, users: Users, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get("/api/searches", headers=users.alice)
        client.get("/api/searches", headers={"Authorization": "Bearer hh_wrong_secret_value"})
        client.post(
            "/api/searches",
            content=function_yaml(),
            headers={**users.alice, "content-type": "application/yaml"},
        )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert (
        "GET /api/searches 200" in text
        and "GET /api/searches 401" in text
        and "POST /api/searches 201" in text
    )
    assert users.alice_token not in text and "hh_wrong_secret_value" not in text and "Bearer" not in text


def test_cors_off_by_default(client: Any) -> None:
    r = client.options(
        "/api/searches", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_only_for_configured_origins(settings: Settings, store: Store) -> None:
    client = make_client(settings.model_copy(update={"cors_origins": ["http://dash.example"]}), store)
    ok = client.get("/healthz", headers={"Origin": "http://dash.example"})
    assert ok.headers["access-control-allow-origin"] == "http://dash.example"
    other = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_openapi_and_docs(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for p in (
        "/api/searches",
        "/api/searches/{search_id}/trials",
        "/api/trials/{trial_id}",
        "/api/datasets",
        "/api/workers",
        "/healthz",
        "/readyz",
    ):
        assert p in paths
    assert "application/yaml" in paths["/api/searches"]["post"]["requestBody"]["content"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = client.get("/docs")
    assert docs.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', docs.text)
    styles = re.findall(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', docs.text)
    assert scripts and styles, docs.text
    for url in scripts + styles:
        assert url.startswith("/"), f"{url} is not served by the app: /docs would need the internet"
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 10_000


def test_not_found_route_and_method(client: Any, users: Users) -> None:
    assert client.get("/api/nothing", headers=users.alice).status_code == 404
    assert client.put("/api/searches", headers=users.alice).status_code == 405


@pytest.mark.parametrize("body", [b"[Infinity]", b'{"n": NaN}', b'{"n": -Infinity}'])
def test_non_finite_json_numbers_are_a_422_not_a_500(client: Any, users: Users, body: bytes) -> None:
    """Found by the OpenAPI fuzz test: FastAPI echoes the bad input, and Infinity is not JSON."""
    search = client.post(
        "/api/searches",
        content=function_yaml(2).encode(),
        headers={**users.alice, "content-type": "application/yaml"},
    ).json()
    r = client.post(
        f"/api/searches/{search['id']}/extend",
        content=body,
        headers={**users.alice, "content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"
    assert client.get(f"/api/searches/{search['id']}", headers=users.alice).json()["max_trials"] == 2
