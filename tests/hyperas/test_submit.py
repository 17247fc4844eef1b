"""Submitting a Hyperas script: text/x-python with query fields, only from tokens that may submit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from hyperaskit import README

from hyperhive.store import SQLiteStore
from hyperhive.store.base import Store

PY = {"Content-Type": "text/x-python"}


def post(api: TestClient, headers: dict[str, str], body: str = README, **query: object):  # type: ignore[no-untyped-def]
    return api.post("/api/searches", content=body.encode(), headers={**PY, **headers}, params=query)


def test_plain_token_is_refused_and_nothing_is_stored(api: TestClient, tokens: dict, store: Store) -> None:
    r = post(api, tokens["plain"], name="mnist", max_trials=3)
    assert r.status_code == 403
    assert "--code" in r.json()["detail"][0]["msg"]
    # the same script inside a JSON document is refused too
    doc = {"name": "x", "max_trials": 2, "script": README}
    assert api.post("/api/searches", json=doc, headers=tokens["plain"]).status_code == 403
    assert store.list_searches() == []


def test_code_token_and_admin_submit_the_script(api: TestClient, tokens: dict, store: Store) -> None:
    r = post(api, tokens["coder"], name="mnist", max_trials=3, algorithm="random", seed=7)
    assert r.status_code == 201, r.text
    search = store.get_search(r.json()["id"])
    assert search.document["script"] == README
    assert list(search.document["params"]) == [
        "Dropout", "Dense", "Activation", "Dropout_1", "Dropout_2", "add", "optimizer", "batch_size"
    ]  # fmt: skip
    assert search.document["algorithm"] == "random" and search.document["seed"] == 7
    # max_trials defaults to the script's optim.minimize(max_evals=5)
    r = post(api, tokens["root"], name="again")
    assert r.status_code == 201, r.text
    assert r.json()["max_trials"] == 5


def test_bad_script_and_fields_are_422_with_the_line(api: TestClient, tokens: dict) -> None:
    bad = README.replace("model.add(Dense(10))", "model.add(Dense(10)")
    r = post(api, tokens["coder"], bad, max_trials=2)
    assert r.status_code == 422
    [err] = r.json()["detail"]
    assert err == {**err, "path": "script", "msg": "line 64: syntax error: '(' was never closed"}
    r = post(api, tokens["coder"], max_trials="many", colour="red")
    assert r.status_code == 422
    assert {e["path"] for e in r.json()["detail"]} == {"max_trials", "colour"}
    r = api.post("/api/searches", content=b"\xff\xfe", headers={**PY, **tokens["coder"]})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"][0]["msg"]


def test_token_code_flag_survives_an_old_sqlite_store(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    s = SQLiteStore(db)
    s.create_token("old")
    s.close()
    conn = sqlite3.connect(db)  # a store made before tokens had `code`
    conn.execute("ALTER TABLE tokens DROP COLUMN code")
    conn.commit()
    conn.close()
    s = SQLiteStore(db)
    _, secret = s.create_token("new", code=True)
    assert [t.code for t in s.list_tokens()] == [False, True]
    assert s.authenticate(secret) is not None and s.authenticate(secret).may_submit_code  # type: ignore[union-attr]
    s.close()


def test_cli_token_create_code_and_submit_dry_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "HYPERHIVE_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "hyperhive.cli"]
    db = f"sqlite:///{tmp_path / 'hh.db'}"
    out = subprocess.run(
        [*cmd, "token", "create", "eve", "--code", "--create", "--store", db],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "code token" in out.stdout
    assert SQLiteStore(tmp_path / "hh.db").list_tokens()[0].code
    model = tmp_path / "model.py"
    model.write_text(README)
    out = subprocess.run([*cmd, "submit", str(model), "--dry-run"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Dropout_2" in out.stdout and "uniform [0, 1]" in out.stdout
    model.write_text(README.replace("{{uniform(0, 1)}}", "{{uniform(0)}}", 1))
    out = subprocess.run([*cmd, "submit", str(model), "--dry-run"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "line 50: uniform needs high" in out.stderr


def test_search_says_when_no_allow_code_worker_is_alive(api: TestClient, tokens: dict, store: Store) -> None:
    from hyperhive.models import WorkerInfo

    sid = post(api, tokens["coder"], name="waits", max_trials=2).json()["id"]
    assert "--allow-code" in api.get(f"/api/searches/{sid}", headers=tokens["coder"]).json()["notice"]
    now = store.clock()
    plain = WorkerInfo(id="w1", host="h", pid=1, started_at=now, last_seen=now, info={"allow_code": False})
    store.register_worker(plain)
    assert api.get(f"/api/searches/{sid}", headers=tokens["coder"]).json()["notice"] is not None
    coder = WorkerInfo(id="w2", host="h", pid=2, started_at=now, last_seen=now, info={"allow_code": True})
    store.register_worker(coder)
    assert api.get(f"/api/searches/{sid}", headers=tokens["coder"]).json()["notice"] is None
