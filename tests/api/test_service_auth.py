"""Every route with no token (401), the owner's token, another user's token (404 or not listed) and an
admin's token; revoked and malformed tokens; ``no_auth``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from servicekit import Users, bearer, function_yaml, good_npz, make_client, run_trials

from hyperhive.models import WorkerInfo
from hyperhive.settings import Settings
from hyperhive.store.base import Store

YAML = {"content-type": "application/yaml"}


@dataclass
class World:
    search_id: str
    trial_id: str
    dataset_id: str


@pytest.fixture
def world(client: Any, users: Users, store: Store) -> World:
    r = client.post("/api/searches", content=function_yaml(3), headers={**users.alice, **YAML})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    run_trials(store, 2, search_id=sid)
    trial_id = store.list_trials(sid)[0].id
    r = client.post("/api/datasets", files={"file": ("d.npz", good_npz())}, headers=users.alice)
    assert r.status_code == 201, r.text
    store.register_worker(
        WorkerInfo(
            id="w1",
            host="gpu1",
            pid=1,
            started_at=store.clock(),
            last_seen=store.clock(),
            current_trial_id=trial_id,
        )
    )
    return World(sid, trial_id, r.json()["id"])


# (method, path, request kwargs, status for the owner/admin, whether another user gets 404)
ROUTES: list[tuple[str, str, dict[str, Any], int, bool]] = [
    ("GET", "/api/searches/{sid}", {}, 200, True),
    ("GET", "/api/searches/{sid}/trials", {}, 200, True),
    ("GET", "/api/searches/{sid}/trials?sort=value&state=done", {}, 200, True),
    ("GET", "/api/searches/{sid}/best", {}, 200, True),
    ("GET", "/api/searches/{sid}/export?format=csv", {}, 200, True),
    ("GET", "/api/searches/{sid}/export?format=json", {}, 200, True),
    ("POST", "/api/searches/{sid}/cancel", {}, 200, True),
    ("POST", "/api/searches/{sid}/extend", {"json": {"n": 2}}, 200, True),
    ("DELETE", "/api/searches/{sid}", {}, 204, True),
    ("GET", "/api/trials/{tid}", {}, 200, True),
    ("GET", "/api/datasets/{did}", {}, 200, True),
    ("DELETE", "/api/datasets/{did}", {}, 204, True),
    ("GET", "/api/searches", {}, 200, False),
    ("GET", "/api/datasets", {}, 200, False),
    ("GET", "/api/workers", {}, 200, False),
    ("GET", "/api/me", {}, 200, False),
    ("POST", "/api/searches", {"content": function_yaml(2), "headers": YAML}, 201, False),
    ("POST", "/api/datasets", {"files": {"file": ("d.npz", good_npz())}}, 201, False),
]
IDS = [f"{m} {p}" for m, p, *_ in ROUTES]


def call(
    client: Any, world: World, route: tuple[str, str, dict[str, Any], int, bool], auth: dict[str, str]
) -> Any:
    method, path, kw, _, _ = route
    kw = dict(kw)
    headers = {**kw.pop("headers", {}), **auth}
    url = path.format(sid=world.search_id, tid=world.trial_id, did=world.dataset_id)
    return client.request(method, url, headers=headers, **kw)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_no_token_is_401(client: Any, world: World, route: Any) -> None:
    r = call(client, world, route, {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
@pytest.mark.parametrize("who", ["alice", "admin"])
def test_owner_and_admin_succeed(client: Any, users: Users, world: World, route: Any, who: str) -> None:
    r = call(client, world, route, getattr(users, who))
    assert r.status_code == route[3], r.text


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r[4]], ids=[i for i, r in zip(IDS, ROUTES, strict=True) if r[4]]
)
def test_other_user_gets_404_like_a_missing_id(
    client: Any, users: Users, world: World, route: Any, store: Store
) -> None:
    r = call(client, world, route, users.bob)
    assert r.status_code == 404, r.text
    missing = client.request(
        route[0],
        route[1].format(sid="0" * 16, tid="0" * 16, did="0" * 16),
        headers=users.bob,
        **{k: v for k, v in route[2].items() if k != "headers"},
    )
    assert missing.status_code == 404
    # nothing changed for the owner
    assert store.get_search(world.search_id).status == "running"
    assert store.get_dataset(world.dataset_id).owner == "alice"


def test_lists_show_only_own_records_to_users(client: Any, users: Users, world: World) -> None:
    r = client.post("/api/searches", content=function_yaml(2, "bobs"), headers={**users.bob, **YAML})
    assert r.status_code == 201
    alice = client.get("/api/searches", headers=users.alice).json()
    bob = client.get("/api/searches", headers=users.bob).json()
    admin = client.get("/api/searches", headers=users.admin).json()
    assert [s["owner"] for s in alice["items"]] == ["alice"] and alice["total"] == 1
    assert [s["owner"] for s in bob["items"]] == ["bob"] and bob["total"] == 1
    assert admin["total"] == 2
    # a user's owner filter cannot widen the view; an admin's narrows it
    assert client.get("/api/searches?owner=alice", headers=users.bob).json()["total"] == 1
    assert client.get("/api/searches?owner=bob", headers=users.admin).json()["items"][0]["owner"] == "bob"
    assert client.get("/api/datasets", headers=users.bob).json() == []
    assert len(client.get("/api/datasets", headers=users.admin).json()) == 1


def test_workers_hide_other_users_current_trial(client: Any, users: Users, world: World) -> None:
    [w] = client.get("/api/workers", headers=users.bob).json()
    assert w["host"] == "gpu1" and w["state"] == "alive" and w["current_trial_id"] is None
    [w] = client.get("/api/workers", headers=users.alice).json()
    assert w["current_trial_id"] == world.trial_id


def test_health_needs_no_token(client: Any) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "hh_token_without_scheme", "Bearer hh_" + "x" * 43],
)
def test_bad_tokens_are_401(client: Any, users: Users, header: str) -> None:
    r = client.get("/api/searches", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_401(client: Any, store: Store) -> None:
    info, secret = store.create_token("carol")
    assert client.get("/api/me", headers=bearer(secret)).json() == {
        "id": info.id,
        "name": "carol",
        "admin": False,
    }
    store.revoke_token(info.id)
    assert client.get("/api/me", headers=bearer(secret)).status_code == 401


def test_tokens_with_the_same_name_are_the_same_user(
    client: Any, users: Users, world: World, store: Store
) -> None:
    _, second = store.create_token("alice")
    assert client.get(f"/api/searches/{world.search_id}", headers=bearer(second)).status_code == 200


def test_no_auth_makes_everyone_the_local_admin(settings: Settings, store: Store, users: Users) -> None:
    client = make_client(settings.model_copy(update={"no_auth": True}), store)
    assert client.get("/api/me").json() == {"id": "local", "name": "local", "admin": True}
    r = client.post("/api/searches", content=function_yaml(2), headers=YAML)
    assert r.status_code == 201 and r.json()["owner"] == "local"
    # a valid token still identifies its user
    assert client.get("/api/me", headers=users.alice).json()["name"] == "alice"
