"""The searches and trials routes: YAML and JSON bodies, 422 with paths, limits, reading, sorting,
cancel, extend, delete and export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
import yaml
from servicekit import EXAMPLES, Users, function_yaml, good_npz, make_client, run_trials

from hyperhive.models import TrialResult
from hyperhive.service.errors import loc_parts
from hyperhive.settings import Settings
from hyperhive.store.base import Store

YAML = {"content-type": "application/yaml"}


def submit(client: Any, headers: dict[str, str], text: str, ctype: str = "application/yaml") -> Any:
    return client.post("/api/searches", content=text, headers={**headers, "content-type": ctype})


@pytest.mark.parametrize("ctype", ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"])
def test_yaml_body(client: Any, users: Users, ctype: str) -> None:
    r = submit(client, users.alice, function_yaml(5), ctype)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending" and body["max_trials"] == 5 and body["owner"] == "alice"
    assert body["document"]["params"]["x"] == {"uniform": [-5, 10]}
    assert body["counts"]["total"] == 0 and body["progress"] == 0.0 and body["best"] is None


def test_json_body(client: Any, users: Users) -> None:
    doc = yaml.safe_load(function_yaml(3))
    r = client.post("/api/searches", json=doc, headers=users.alice)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "quad"
    r = submit(client, users.alice, json.dumps(doc), "application/json; charset=utf-8")
    assert r.status_code == 201


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_bundled_examples_are_accepted(client: Any, users: Users, example: str) -> None:
    r = submit(client, users.alice, (EXAMPLES / example).read_text())
    assert r.status_code == 201, r.text


def test_every_validation_error_with_its_path(client: Any, users: Users) -> None:
    text = """
name: bad
max_trials: 0
dataset: {name: digits}
model:
  layers:
    - {type: Dense, units: 8}
    - {type: Dropout, rate: {uniform: [0.9, 0.1]}}
training: {epochs: -1}
"""
    r = submit(client, users.alice, text)
    assert r.status_code == 422
    items = r.json()["detail"]
    paths = {i["path"] for i in items}
    assert {"max_trials", "model.layers[1].rate", "training.epochs"} <= paths, items
    by_path = {i["path"]: i for i in items}
    assert by_path["model.layers[1].rate"]["loc"] == ["body", "model", "layers", 1, "rate"]
    assert by_path["max_trials"]["loc"] == ["body", "max_trials"]
    assert all(i["msg"] for i in items)


@pytest.mark.parametrize(
    ("text", "ctype", "needle"),
    [
        ("name: x\n  bad: [indent", "application/yaml", "YAML syntax error"),
        ("{not json", "application/json", "JSON syntax error"),
        ("- a list\n- not a mapping", "application/yaml", "mapping"),
        ("", "application/yaml", "empty"),
        ("a: 1\na: 2\n", "application/yaml", "duplicate"),
    ],
)
def test_unparseable_documents_are_422(client: Any, users: Users, text: str, ctype: str, needle: str) -> None:
    r = submit(client, users.alice, text, ctype)
    assert r.status_code == 422
    [item] = r.json()["detail"]
    assert item["loc"] == ["body"] and needle in item["msg"]


def test_unsupported_content_type_is_415(client: Any, users: Users) -> None:
    r = submit(client, users.alice, function_yaml(), "application/xml")
    assert r.status_code == 415 and "application/yaml" in r.json()["detail"]


def test_request_size_limit_is_413(settings: Settings, store: Store, users: Users) -> None:
    client = make_client(settings.model_copy(update={"max_request_bytes": 2048}), store)
    big = function_yaml() + "description: " + "x" * 4096 + "\n"
    r = submit(client, users.alice, big)
    assert r.status_code == 413 and "2048" in r.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for _ in range(10):
            yield b"# " + b"x" * 500 + b"\n"

    r = client.post("/api/searches", content=chunks(), headers={**users.alice, **YAML})
    assert r.status_code == 413
    assert store.count_searches() == 0


def test_dataset_references(client: Any, users: Users) -> None:
    lecture = yaml.safe_load((EXAMPLES / "lecture-cnn.yaml").read_text())
    r = client.post("/api/datasets", files={"file": ("d.npz", good_npz())}, headers=users.alice)
    upload_id = r.json()["id"]
    lecture["dataset"] = {"upload": upload_id}
    assert client.post("/api/searches", json=lecture, headers=users.alice).status_code == 201
    r = client.post("/api/searches", json=lecture, headers=users.bob)  # not bob's upload
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "dataset", "upload"]
    assert client.post("/api/searches", json=lecture, headers=users.admin).status_code == 201
    lecture["dataset"] = {"upload": "nosuchid"}
    assert client.post("/api/searches", json=lecture, headers=users.alice).status_code == 422
    # files on the worker machines: admins only
    lecture["dataset"] = {"path": "/data/mnist.npz"}
    r = client.post("/api/searches", json=lecture, headers=users.alice)
    assert r.status_code == 422 and r.json()["detail"][0]["path"] == "dataset.path"
    assert client.post("/api/searches", json=lecture, headers=users.admin).status_code == 201


def test_list_filters_and_pagination(client: Any, users: Users, store: Store) -> None:
    ids = [submit(client, users.alice, function_yaml(2, f"s{i}")).json()["id"] for i in range(5)]
    store.cancel_search(ids[0])
    page = client.get("/api/searches?limit=2&offset=1", headers=users.alice).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [s["id"] for s in page["items"]] == [ids[3], ids[2]]  # newest first
    assert client.get("/api/searches?status=cancelled", headers=users.alice).json()["total"] == 1
    assert [s["name"] for s in client.get("/api/searches?name=s2", headers=users.alice).json()["items"]] == [
        "s2"
    ]
    assert client.get("/api/searches?status=bogus", headers=users.alice).status_code == 422
    assert client.get("/api/searches?limit=0", headers=users.alice).status_code == 422


def test_search_detail_counts_progress_and_best(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, function_yaml(4)).json()["id"]
    run_trials(store, 3, search_id=sid)
    # one running trial
    running = store.claim("w2", 30, search_id=sid)
    assert running is not None
    s = client.get(f"/api/searches/{sid}", headers=users.alice).json()
    assert s["status"] == "running"
    assert s["counts"]["done"] == 3 and s["counts"]["running"] == 1 and s["counts"]["finished"] == 3
    assert s["progress"] == pytest.approx(0.75)
    best = min(store.list_trials(sid, state="done"), key=lambda t: t.value or 0)
    assert s["best"]["id"] == best.id and s["best"]["value"] == pytest.approx(best.value)
    assert set(s["best"]["config"]["params"]) == {"x", "y"}
    assert s["best"]["metrics"] == {"loss": pytest.approx(best.value)}
    assert client.get(f"/api/searches/{sid}/best", headers=users.alice).json()["id"] == best.id


def test_trials_sorting_and_state_filter(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, function_yaml(6)).json()["id"]
    run_trials(store, 5, search_id=sid)
    store.claim("w2", 30, search_id=sid)
    get = lambda q: client.get(f"/api/searches/{sid}/trials{q}", headers=users.alice).json()  # noqa: E731
    assert [t["number"] for t in get("")["items"]] == [0, 1, 2, 3, 4, 5]
    assert [t["number"] for t in get("?order=desc")["items"]] == [5, 4, 3, 2, 1, 0]
    values = [t["value"] for t in get("?sort=value")["items"]]
    assert values[:5] == sorted(values[:5]) and values[5] is None  # min mode: best first, no value last
    desc = [t["value"] for t in get("?sort=value&order=desc")["items"]]
    assert desc[:5] == sorted(desc[:5], reverse=True)
    assert get("?state=running")["total"] == 1 and get("?state=done")["total"] == 5
    page = get("?limit=2&offset=4")
    assert [t["number"] for t in page["items"]] == [4, 5] and page["total"] == 6
    assert client.get(f"/api/searches/{sid}/trials?sort=bogus", headers=users.alice).status_code == 422


def test_best_before_any_trial_is_done_is_404(client: Any, users: Users) -> None:
    sid = submit(client, users.alice, function_yaml(2)).json()["id"]
    r = client.get(f"/api/searches/{sid}/best", headers=users.alice)
    assert r.status_code == 404 and "no done trial" in r.json()["detail"]


def test_trial_detail_has_everything_but_the_lease_token(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, (EXAMPLES / "lecture-cnn.yaml").read_text()).json()["id"]
    run_trials(store, 1, search_id=sid)
    running = store.claim("w2", 30, search_id=sid)
    assert running is not None and running.lease_token
    done = store.list_trials(sid, state="done")[0]
    t = client.get(f"/api/trials/{done.id}", headers=users.alice).json()
    assert t["metrics"]["val_confusion_matrix"] == [[5, 1], [0, 4]]
    assert t["history"][-1]["epoch"] == 2 and t["config"]["model"]["layers"][0]["type"] == "Conv2D"
    assert t["worker_id"] == "w-test" and t["duration"] is not None and t["info"] == {"host": "test"}
    r = client.get(f"/api/trials/{running.id}", headers=users.alice)
    assert running.lease_token not in r.text and "lease_token" not in r.json()
    assert "reported_token" not in r.text
    listed = client.get(f"/api/searches/{sid}/trials", headers=users.alice).json()["items"]
    assert listed[0]["metrics"] == {
        "val_accuracy": pytest.approx(done.value),
        "val_loss": pytest.approx(1 - done.value),
        "val_f1": pytest.approx(done.value - 0.01),
    }


def test_cancel_extend_delete(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, function_yaml(3)).json()["id"]
    run_trials(store, 3, search_id=sid)
    assert client.get(f"/api/searches/{sid}", headers=users.alice).json()["status"] == "completed"
    r = client.post(f"/api/searches/{sid}/extend", json={"n": 2}, headers=users.alice)
    assert r.status_code == 200 and r.json()["status"] == "running" and r.json()["max_trials"] == 5
    for bad in ({"n": 0}, {"n": "x"}, {}, {"n": 10**9}):
        assert client.post(f"/api/searches/{sid}/extend", json=bad, headers=users.alice).status_code == 422
    # the budget stays within the document limit (each call's n did, the total did not)
    r = client.post(f"/api/searches/{sid}/extend", json={"n": 100_000}, headers=users.alice)
    [problem] = r.json()["detail"]
    assert r.status_code == 422 and problem["path"] == "n"
    assert "would have 100005 trials; at most 100000 (it has 5, so n <= 99995)" in problem["msg"]
    assert client.get(f"/api/searches/{sid}", headers=users.alice).json()["max_trials"] == 5
    store.claim("w", 30, search_id=sid)
    r = client.post(f"/api/searches/{sid}/cancel", headers=users.alice).json()
    assert r["status"] == "cancelled" and r["counts"]["cancelled"] == 1 and r["counts"]["running"] == 0
    assert client.post(f"/api/searches/{sid}/cancel", headers=users.alice).json()["status"] == "cancelled"
    r = client.post(f"/api/searches/{sid}/extend", json={"n": 1}, headers=users.alice)
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    assert client.delete(f"/api/searches/{sid}", headers=users.alice).status_code == 204
    assert client.get(f"/api/searches/{sid}", headers=users.alice).status_code == 404
    assert client.delete(f"/api/searches/{sid}", headers=users.alice).status_code == 404


def test_delete_running_search_cancels_its_trials_first(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, function_yaml(3)).json()["id"]
    trial = store.claim("w", 30, search_id=sid)
    assert trial is not None and trial.lease_token
    assert client.delete(f"/api/searches/{sid}", headers=users.alice).status_code == 204
    assert store.count_searches() == 0


def test_export_csv_and_json(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, (EXAMPLES / "lecture-cnn.yaml").read_text()).json()["id"]
    run_trials(store, 3, search_id=sid)
    running = store.claim("w2", 30, search_id=sid)
    assert running is not None and running.lease_token
    r = client.get(f"/api/searches/{sid}/export?format=csv", headers=users.alice)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f"lecture-cnn-{sid}.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"]
    assert [row["state"] for row in rows] == ["done", "done", "done", "running"]
    assert {
        "value",
        "config.model.layers[0].filters",
        "config.training.batch_size",
        "metrics.val_accuracy",
    } <= set(rows[0])
    assert "metrics.val_confusion_matrix" not in rows[0]
    done = {t.id: t for t in store.list_trials(sid, state="done")}
    for row in rows[:3]:
        assert float(row["value"]) == pytest.approx(done[row["id"]].value)
        assert int(row["config.model.layers[0].filters"]) in (16, 32, 64)
    assert rows[3]["value"] == ""
    # times in ISO 8601 UTC; hyperopt's negated `loss` of this accuracy search is not a column
    assert "loss" not in rows[0] and rows[3]["finished_at"] == ""
    started = dt.datetime.fromisoformat(rows[0]["started_at"])
    assert started.utcoffset() == dt.timedelta(0) and rows[0]["started_at"].endswith("+00:00")
    assert started.timestamp() == pytest.approx(done[rows[0]["id"]].started_at, abs=1e-3)
    r = client.get(f"/api/searches/{sid}/export?format=json", headers=users.alice)
    bundle = r.json()
    assert bundle["format"] == "hyperhive-export/1" and len(bundle["trials"]) == 4
    assert running.lease_token not in r.text and "reported_token" not in r.text
    assert client.get(f"/api/searches/{sid}/export?format=xml", headers=users.alice).status_code == 422
    # the JSON export imports into another store
    from hyperhive.store import SQLiteStore

    other = SQLiteStore(store.path.parent / "other.db")  # type: ignore[attr-defined]
    imported = other.import_search(bundle)
    assert imported.counts.done == 3 and imported.counts.queued == 1
    other.close()


def test_store_unavailable_is_503(client: Any, users: Users, store: Store) -> None:
    # a store error in the middle of a request maps to its status
    from hyperhive.errors import StoreUnavailable

    def down(*a: Any, **k: Any) -> Any:
        raise StoreUnavailable("database unreachable")

    store.create_search = down  # type: ignore[method-assign]
    r = submit(client, users.alice, function_yaml())
    assert r.status_code == 503 and r.json() == {"detail": "the store is unavailable; retry later"}


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("<document>", ["body"]),
        ("max_trials", ["body", "max_trials"]),
        ("model.layers[3].rate", ["body", "model", "layers", 3, "rate"]),
        ('params["odd key"].x', ["body", "params", "odd key", "x"]),
        (
            "training.optimizer.choice.adam.learning_rate",
            ["body", "training", "optimizer", "choice", "adam", "learning_rate"],
        ),
        ("a..b", ["body", "a..b"]),
    ],
)
def test_loc_parts(path: str, parts: list[Any]) -> None:
    assert loc_parts(path) == parts


def test_trial_reported_failed_shows_error(client: Any, users: Users, store: Store) -> None:
    sid = submit(client, users.alice, function_yaml(2)).json()["id"]
    t = store.claim("w", 30, search_id=sid)
    assert t is not None and t.lease_token
    store.report(t.id, t.lease_token, TrialResult.failed("ValueError: boom"))
    tr = client.get(f"/api/trials/{t.id}", headers=users.alice).json()
    assert tr["state"] == "failed" and tr["error"] == "ValueError: boom"


NAMED_AND_NULL = """\
name: options
algorithm: random
max_trials: 12
seed: 5
dataset: {name: digits}
model:
  layers:
    - choice:
        small: [{type: Dense, units: 8}]
        wide: [{type: Dense, units: {choice: [64, 128]}}]
    - {choice: [null, {type: Dropout, rate: {uniform: [0.1, 0.5]}}]}
training: {epochs: 1, optimizer: {type: Adam, learning_rate: {loguniform: [1.0e-4, 1.0e-2]}}}
"""


def test_trials_name_the_options_chosen(client: Any, users: Users, store: Store) -> None:
    """Regression: the documented labels say `model.layers[0].wide[0].units`, the output said
    `model.layers[0][0].units`, and a `null` option was a blank cell. Trials carry `params` by document
    label: a named option's name, `(none)` for a null option, numbers for distributions."""
    sid = submit(client, users.alice, NAMED_AND_NULL).json()["id"]
    run_trials(store, 12, search_id=sid)
    items = client.get(f"/api/searches/{sid}/trials", headers=users.alice).json()["items"]
    assert len(items) == 12
    seen_layers, seen_dropout = set(), set()
    for tr in items:
        p = tr["params"]
        seen_layers.add(p["model.layers[0]"])
        assert 1e-4 <= p["training.optimizer.learning_rate"] <= 1e-2
        if p["model.layers[0]"] == "wide":
            assert p["model.layers[0].wide[0].units"] == tr["config"]["model"]["layers"][0][0]["units"]
        else:
            assert "model.layers[0].wide[0].units" not in p  # an option not chosen has no value
        if p["model.layers[1]"] == "(none)":
            assert tr["config"]["model"]["layers"][1] is None and "model.layers[1][1].rate" not in p
            seen_dropout.add("none")
        else:
            assert p["model.layers[1]"] == "option 1"
            assert p["model.layers[1][1].rate"] == tr["config"]["model"]["layers"][1]["rate"]
            seen_dropout.add("dropout")
    assert seen_layers == {"small", "wide"} and seen_dropout == {"none", "dropout"}
    best = client.get(f"/api/searches/{sid}/best", headers=users.alice).json()
    assert best["params"] == client.get(f"/api/trials/{best['id']}", headers=users.alice).json()["params"]
    assert best["params"]["model.layers[0]"] in ("small", "wide")
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/api/searches/{sid}/export", headers=users.alice).text))
    )
    assert {r["param.model.layers[1]"] for r in rows} == {"(none)", "option 1"}
    assert {r["param.model.layers[0]"] for r in rows} == {"small", "wide"}


def test_a_search_whose_budget_ended_without_a_done_trial_is_failed(
    client: Any, users: Users, store: Store
) -> None:
    """Every trial failed (fewer than max_consecutive_failures): the API says ``failed`` with the last
    error, in the search and in the list filtered by status, not ``completed``."""
    sid = submit(client, users.alice, function_yaml(2)).json()["id"]
    for i in range(2):
        t = store.claim("w", search_id=sid)
        assert t is not None and t.lease_token
        store.report(t.id, t.lease_token, TrialResult.failed(f"RuntimeError: boom {i}"))
    s = client.get(f"/api/searches/{sid}", headers=users.alice).json()
    assert s["status"] == "failed" and s["best"] is None
    assert s["error"] == "no trial succeeded (2 failed); last error: RuntimeError: boom 1"
    page = client.get("/api/searches?status=failed", headers=users.alice).json()
    assert [x["id"] for x in page["items"]] == [sid]
    assert client.get("/api/searches?status=completed", headers=users.alice).json()["total"] == 0
