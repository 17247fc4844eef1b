"""schemathesis (PyPI) over the API's OpenAPI schema against a live server: uvicorn on a loopback port
in front of the real app and a SQLite store holding searches, trials and a dataset of two users. Every
operation gets generated requests (valid for the schema, and schemathesis' negative data), with an
admin token; no response may be a 5xx, and every response must match the schema the API publishes for
its status code (``response_schema_conformance``). Bounded: a few examples per operation, no shrinking
past a short deadline, so the whole file stays within ~30 s on a shared 2-core machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from servicekit import bearer, free_port, function_yaml, good_npz, make_client, run_trials

from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

EXAMPLES_PER_OPERATION = 8
EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from hyperhive.service.app import create_app

    tmp = tmp_path_factory.mktemp("schemathesis")
    store = SQLiteStore(tmp / "hh.db")
    app_settings = Settings(
        store=f"sqlite:///{tmp / 'hh.db'}", home=tmp / "home", max_request_bytes=64 * 1024,
        max_upload_bytes=256 * 1024,
    )  # type: ignore[call-arg]  # fmt: skip
    admin = bearer(store.create_token("root", admin=True)[1])
    alice = bearer(store.create_token("alice")[1])
    seed = make_client(app_settings, store)
    for who in (admin, alice):
        for doc in (function_yaml(4), (EXAMPLES / "lecture-cnn.yaml").read_text()):
            r = seed.post("/api/searches", content=doc, headers={**who, "content-type": "application/yaml"})
            assert r.status_code == 201, r.text
        r = seed.post("/api/datasets", files={"file": ("d.npz", good_npz())}, headers=who)
        assert r.status_code == 201, r.text
    run_trials(store, 6)
    port = free_port()
    config = uvicorn.Config(
        create_app(app_settings, store), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"url": url, "admin": admin}
    server.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def operations(live: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{live['url']}/openapi.json")
    schema.config.update(base_url=live["url"])
    return [result.ok() for result in schema.get_all_operations()]


def hunt(op: Any, mode: Any, headers: dict[str, str]) -> str | None:
    """A few generated requests to one operation; the first failure schemathesis reports, or None."""

    @given(case=op.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows the request found
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=30
        )

    try:
        run()
    except Unsatisfiable:  # no negative data for an operation without parameters or body
        return None
    except Exception as exc:
        return f"{op.method.upper()} {op.path}: {type(exc).__name__}: {str(exc)[:1500]}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_responses_match_the_schema(
    live: dict[str, Any], operations: list[Any], mode: Any
) -> None:
    """Each operation, a few generated requests of this mode; every operation's failure is reported at
    once. (schemathesis' own pytest plugin, ``from_fixture``, does not run under pytest 9: it sets a node
    attribute pytest no longer has; hypothesis drives its strategies here instead.)"""
    assert len(operations) >= 17
    failures = [f for op in operations if (f := hunt(op, mode, live["admin"])) is not None]
    assert not failures, "\n\n".join(failures)


def test_the_schema_is_served_and_lists_every_operation(live: dict[str, Any]) -> None:
    doc = httpx.get(f"{live['url']}/openapi.json", timeout=10).json()
    assert sum(len(ops) for ops in doc["paths"].values()) >= 17
