"""Issue 8, item 5: a ``--no-auth`` server is not reachable from web pages.

The attack: any page open in the laptop's browser POSTs a search as ``text/plain`` (no CORS preflight)
reading a ``path:`` dataset, or points a name it controls at 127.0.0.1 (DNS rebinding) and talks to the
server as a same-origin page. Tried against the real app (ASGI, and a real uvicorn server for the
clients) over a real SQLite store: each is refused and nothing is stored; the CLI and the Python client
keep working.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from servicekit import bearer, cli_env, function_yaml, good_npz, hyperhive, make_client

from hyperhive.client import Client, ClientError
from hyperhive.service.http_policy import allowed_hosts
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

PATH_SEARCH = """\
name: steal
max_trials: 1
dataset: {path: /home/me/private/data.npz}
model:
  layers:
    - {type: Dense, units: 8}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "hh.db")
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home", no_auth=True)  # type: ignore[call-arg]


@pytest.fixture
def app(settings: Settings, store: SQLiteStore) -> Any:
    return make_client(settings, store)


# ------------------------------------------------------------------ content types
@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,  # a body without a content type (fetch with a Blob)
    ],
)
def test_a_simple_cross_site_post_is_415_and_stores_nothing(
    app: Any, store: SQLiteStore, ctype: str | None
) -> None:
    headers = {} if ctype is None else {"content-type": ctype}
    for body in (PATH_SEARCH, function_yaml(2)):
        r = app.post("/api/searches", content=body.encode(), headers=headers)
        assert r.status_code == 415, r.text
        detail = r.json()["detail"]
        assert "unsupported content type" in detail and "application/yaml" in detail
    assert store.count_searches() == 0


def test_every_route_with_a_body_checks_the_content_type(app: Any, store: SQLiteStore) -> None:
    created = app.post("/api/searches", content=function_yaml(2), headers={"content-type": "text/yaml"})
    assert created.status_code == 201
    sid = created.json()["id"]
    r = app.post(f"/api/searches/{sid}/extend", content=b'{"n": 5}', headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert app.get(f"/api/searches/{sid}").json()["max_trials"] == 2
    # an upload takes a form or raw bytes, not a text/plain body
    r = app.post("/api/datasets", content=good_npz(), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and store.list_datasets() == []


# ------------------------------------------------------------------ Host allow-list (DNS rebinding)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "[::2]"])
def test_a_foreign_host_is_400_and_stores_nothing(app: Any, store: SQLiteStore, host: str) -> None:
    r = app.post(
        "/api/searches", content=function_yaml(2), headers={"host": host, "content-type": "text/yaml"}
    )
    assert r.status_code == 400 and "host not allowed" in r.json()["detail"]
    r = app.get("/api/searches", headers={"host": host})  # rebinding would read everything too
    assert r.status_code == 400
    assert store.count_searches() == 0
    assert app.get("/healthz", headers={"host": host}).status_code == 200  # probes answer any Host


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000", "127.0.0.1"])
def test_loopback_hosts_are_served(app: Any, host: str) -> None:
    assert app.get("/api/me", headers={"host": host}).status_code == 200


def test_the_configured_host_and_operator_names_are_served(
    settings: Settings, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERHIVE_ALLOWED_HOSTS", "hyperhive.example.org, *.lab.example")
    configured = Settings(store=settings.store, home=settings.home, host="10.1.2.3")  # type: ignore[call-arg]
    assert configured.allowed_hosts == ["hyperhive.example.org", "*.lab.example"]
    client = make_client(configured, store)
    for host in ("10.1.2.3:8000", "hyperhive.example.org", "gpu1.lab.example:443", "127.0.0.1"):
        assert client.get("/api/searches", headers={"host": host}).status_code != 400, host
    for host in ("example.org", "lab.example.evil", "evil.example"):
        assert client.get("/api/searches", headers={"host": host}).status_code == 400, host
    bound_everywhere = Settings(store=settings.store, host="0.0.0.0")  # type: ignore[call-arg]
    assert socket.gethostname().lower() in allowed_hosts(bound_everywhere)
    assert "0.0.0.0" not in allowed_hosts(bound_everywhere)


# ------------------------------------------------------------------ Origin (bodiless POSTs, forms)
def test_a_cross_site_origin_cannot_change_anything(app: Any, store: SQLiteStore) -> None:
    sid = app.post("/api/searches", content=function_yaml(2), headers={"content-type": "text/yaml"}).json()[
        "id"
    ]
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        r = app.post(f"/api/searches/{sid}/cancel", headers={"origin": origin})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], origin
        files = {"file": ("d.npz", good_npz(), "application/octet-stream")}
        assert app.post("/api/datasets", files=files, headers={"origin": origin}).status_code == 403
    assert store.get_search(sid).status == "pending" and store.list_datasets() == []
    # the server's own pages (Swagger UI at /docs) send their own origin
    r = app.post(f"/api/searches/{sid}/cancel", headers={"origin": "http://127.0.0.1"})
    assert r.status_code == 200 and store.get_search(sid).status == "cancelled"


# ------------------------------------------------------------------ no admin-only sources without auth
@pytest.mark.parametrize(
    ("dataset", "field"),
    [({"path": "/home/me/data.npz"}, "dataset.path"), ({"folder": "/home/me/photos"}, "dataset.folder")],
)
def test_no_auth_refuses_worker_files_with_403(
    app: Any, store: SQLiteStore, dataset: dict[str, str], field: str
) -> None:
    doc = yaml.safe_load(PATH_SEARCH)
    doc["dataset"] = dataset
    r = app.post("/api/searches", json=doc)
    assert r.status_code == 403, r.text
    [item] = r.json()["detail"]
    assert item["path"] == field and "--no-auth" in item["msg"] and "upload" in item["msg"]
    assert store.count_searches() == 0
    # the anonymous user is otherwise the local admin, and a real admin token still may
    assert app.get("/api/me").json()["admin"] is True
    _, secret = store.create_token("root", admin=True)
    assert app.post("/api/searches", json=doc, headers=bearer(secret)).status_code == 201


# ------------------------------------------------------------------ the CLI and the Python client still work
@pytest.fixture
def live(settings: Settings, store: SQLiteStore) -> Iterator[str]:
    """The app under a real uvicorn server on 127.0.0.1 in a thread."""
    import uvicorn

    from hyperhive.service.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings.model_copy(update={"port": port}), store)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_the_python_client_sends_proper_content_types(live: str, store: SQLiteStore, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(function_yaml(2, "from-yaml"))
    (tmp_path / "s.json").write_text('{"name": "from-json", "max_trials": 2, ' + _function_json_tail())
    (tmp_path / "s.txt").write_text(function_yaml(2, "from-txt"))
    with Client(live) as hh:
        assert hh.submit(function_yaml(2, "text-yaml"))["name"] == "text-yaml"
        assert (
            hh.submit('{"name": "text-json", "max_trials": 2, ' + _function_json_tail())["name"]
            == "text-json"
        )
        assert hh.submit(yaml.safe_load(function_yaml(2, "mapping")))["name"] == "mapping"
        for suffix in ("yaml", "json", "txt"):
            assert hh.submit_file(tmp_path / f"s.{suffix}")["name"] == f"from-{suffix}"
        sid = hh.list_searches(name="mapping")["items"][0]["id"]
        assert hh.extend(sid, 3)["max_trials"] == 5
        assert hh.cancel(sid)["status"] == "cancelled"
        hh.delete(sid)
        (tmp_path / "d.npz").write_bytes(good_npz())
        assert hh.upload_dataset(tmp_path / "d.npz", name="digits-ish")["name"] == "digits-ish"
        with pytest.raises(ClientError) as err:
            hh.submit(PATH_SEARCH)
        assert err.value.status == 403 and "dataset.path" in err.value.message
    assert store.count_searches() == 5


@pytest.mark.slow
def test_the_cli_submits_to_a_no_auth_server(live: str, store: SQLiteStore, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(function_yaml(2, "from-cli"))
    r = hyperhive("submit", str(tmp_path / "s.yaml"), cwd=tmp_path, env=cli_env(HYPERHIVE_URL=live))
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s.name for s in store.list_searches()] == ["from-cli"]


def _function_json_tail() -> str:
    return (
        '"algorithm": "random", "objective": {"function": "hyperhive.demo_objectives:branin"}, '
        '"params": {"x": {"uniform": [-5, 10]}, "y": {"uniform": [0, 15]}}}'
    )
