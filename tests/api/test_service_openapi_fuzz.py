"""Property-based test of the whole API from its OpenAPI schema (schemathesis-style, with hypothesis):
requests for every operation in ``app.openapi()`` with generated path ids (real, other users', random),
query values (valid for the schema and not), bodies (mutated valid search documents, arbitrary JSON
and YAML text, random bytes as uploads) and tokens (none, owner, other user, admin, garbage). No
response may be a 5xx, and every JSON response must parse."""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servicekit import bearer, function_yaml, good_npz, make_client, run_trials

from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    store = SQLiteStore(tmp / "hh.db")
    app_settings = Settings(
        store=f"sqlite:///{tmp / 'hh.db'}",
        home=tmp / "home",
        max_request_bytes=64 * 1024,
        max_upload_bytes=256 * 1024,
    )  # type: ignore[call-arg]
    client = make_client(app_settings, store)
    tokens = {
        "alice": store.create_token("alice")[1],
        "bob": store.create_token("bob")[1],
        "root": store.create_token("root", admin=True)[1],
    }
    auth = {k: bearer(v) for k, v in tokens.items()}
    ids: dict[str, list[str]] = {"search_id": [], "trial_id": [], "dataset_id": []}
    for who in ("alice", "bob"):
        for doc in (function_yaml(6), (EXAMPLES / "lecture-cnn.yaml").read_text()):
            r = client.post(
                "/api/searches", content=doc, headers={**auth[who], "content-type": "application/yaml"}
            )
            ids["search_id"].append(r.json()["id"])
        r = client.post("/api/datasets", files={"file": ("d.npz", good_npz())}, headers=auth[who])
        ids["dataset_id"].append(r.json()["id"])
    run_trials(store, 6)
    ids["trial_id"] = [t.id for sid in ids["search_id"] for t in store.list_trials(sid)]
    ids["owner"] = list(tokens)  # /api/quotas/{owner}
    documents = [yaml.safe_load(function_yaml(4))] + [
        yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))
    ]
    yield {"client": client, "auth": auth, "ids": ids, "schema": client.app.openapi(), "documents": documents}  # type: ignore[attr-defined]
    store.close()


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for a (small subset of) JSON Schema."""
    schema = resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, components) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        return st.text(max_size=schema.get("maxLength", 30))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components), max_size=3)
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", []))
        props = {k: from_schema(v, components) for k, v in schema["properties"].items()}
        return st.fixed_dictionaries(
            {k: v for k, v in props.items() if k in required},
            optional={k: v for k, v in props.items() if k not in required},
        )
    return json_values


@st.composite
def mutated_document(draw: st.DrawFn, documents: list[dict[str, Any]]) -> Any:
    """A valid document with a few leaves or keys replaced by arbitrary JSON."""
    doc = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(0, 3))):
        node: Any = doc
        path: list[Any] = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            node = node[key]
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        if path:
            target[path[-1]] = draw(json_values)
        elif isinstance(doc, dict):
            doc[draw(st.text(max_size=8))] = draw(json_values)
    return doc


def body_for(draw: st.DrawFn, op: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    content = (op.get("requestBody") or {}).get("content") or {}
    if not content:
        return {}
    ctype = draw(st.sampled_from(sorted(content)))
    components = world["schema"].get("components", {})
    if ctype == "multipart/form-data":
        data = draw(st.sampled_from([good_npz()]) | st.binary(max_size=300))
        form = draw(st.fixed_dictionaries({}, optional={"name": st.text(max_size=20)}))
        return {"files": {"file": ("f.npz", data)}, "data": form}
    if ctype == "application/octet-stream":
        return {"content": draw(st.binary(max_size=300)), "headers": {"content-type": ctype}}
    if ctype == "application/yaml":
        doc = draw(mutated_document(world["documents"]))
        text = draw(st.just(yaml.safe_dump(doc)) | st.text(max_size=200))
        return {"content": text.encode("utf-8", "surrogatepass"), "headers": {"content-type": ctype}}
    schema = content[ctype].get("schema", {})
    if "properties" in resolve(schema, components):
        value = draw(from_schema(schema, components) | json_values)
    else:
        value = draw(mutated_document(world["documents"]) | json_values)
    return {"content": json.dumps(value).encode(), "headers": {"content-type": ctype}}


@st.composite
def api_request(draw: st.DrawFn, world: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    paths = world["schema"]["paths"]
    components = world["schema"].get("components", {})
    path, method = draw(st.sampled_from(sorted((p, m) for p, ops in paths.items() for m in ops)))
    op = paths[path][method]
    url = path
    query: dict[str, Any] = {}
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        if where == "path":
            pool = world["ids"].get(name, [])
            value = draw(
                st.sampled_from(pool)
                | st.text(string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=20)
            )
            url = url.replace("{" + name + "}", value)
        elif where == "query" and draw(st.booleans()):
            query[name] = draw(from_schema(param.get("schema", {}), components) | st.text(max_size=10))
    kw = body_for(draw, op, world)
    auth = draw(st.sampled_from([{}, {"Authorization": "Bearer garbage"}, *world["auth"].values()]))
    kw["headers"] = {**kw.get("headers", {}), **auth}
    kw["params"] = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in query.items()}
    return method.upper(), url, kw


def test_openapi_covers_every_route(world: dict[str, Any]) -> None:
    ops = {(m, p) for p, o in world["schema"]["paths"].items() for m in o}
    assert len(ops) >= 17, ops


@settings(
    max_examples=300,  # tests/api/test_schemathesis.py covers every operation besides
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_no_request_makes_a_5xx(world: dict[str, Any], data: st.DataObject) -> None:
    method, url, kw = data.draw(api_request(world))
    r = world["client"].request(method, url, **kw)
    assert r.status_code < 500, (method, url, kw, r.status_code, r.text[:500])
    if r.headers.get("content-type", "").startswith("application/json") and r.content:
        r.json()
