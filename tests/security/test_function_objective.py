"""Issue 8.1: a function objective cannot run code its worker operator did not allow.

The attack: a token holder submits ``objective.function: "<allowed module>:<something it imports>"`` (or an
attribute chain, a class, a builtin, a look-alike module) and the sampled params become the callable's
argument, e.g. a command line. Each shape is tried against a real worker (the ``Worker`` class) on a real
SQLite store. Documents the API would refuse are written straight into the store (an old row, or one a
bundle carried in), so the worker's own check is what is tested; the submit-time check is tested apart.
The attempted command is always ``touch <marker>``: the marker must never appear.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import search_spaces
from hyperhive.models import TrialState
from hyperhive.store import SQLiteStore
from workers.daemon import Worker, WorkerOptions

PKG = "hhsec_objs"  # the allowed package (a unique name: modules stay imported for the whole session)
EVIL = "hhsec_objs_evil"  # shares the allowed prefix as text, not as a dotted module path

MODULE = """
import functools
import os
import subprocess
from subprocess import run, call
from os import system
from shutil import rmtree
from {evil}.tools import touch_marker as reexported


def _touch(params):
    open(params["marker"], "w").close()
    return 0.0


class Touch:
    def __init__(self, params):
        _touch(params)


class _Caller:
    def __call__(self, params):
        return _touch(params)


instance = _Caller()
partial_touch = functools.partial(_touch)
bound = _Caller().__call__
builtin_alias = print


def __getattr__(name):
    # a PEP 562 hook: any missing name would be a function defined right here
    def hooked(params):
        return _touch(params)

    return hooked


def good(params):
    return (float(params["x"]) - 1.0) ** 2
"""

EVIL_MODULE = """
def touch_marker(params):
    open(params["marker"], "w").close()
    return 0.0
"""


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("objective_pkgs")
    for name, files in {
        PKG: {"__init__.py": "", "objs.py": MODULE.format(evil=EVIL)},
        EVIL: {"__init__.py": "", "tools.py": EVIL_MODULE},
    }.items():
        (root / name).mkdir()
        for file, text in files.items():
            (root / name / file).write_text(textwrap.dedent(text))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "store.db")
    yield s
    s.close()


def _function_doc(function: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "attack",
        "max_trials": 1,
        "seed": 1,
        "algorithm": "random",
        "objective": {"function": function},
        "params": params,
    }


def _store_bypassing_validation(store: SQLiteStore, path: Path, function: str, params: dict[str, Any]) -> str:
    """A search whose stored document names ``function`` whatever search_spaces would say of it, with its
    one trial queued with a config already (as a requeued or imported trial is), so that no suggestion
    (which validates the document again) stands between the stored document and the worker."""
    search = store.create_search(search_spaces.validate(_function_doc(f"{PKG}.objs:good", params)))
    trial = store.claim("preparer", 30.0, search_id=search.id)
    assert trial is not None and trial.config is not None and trial.lease_token is not None
    store.release(trial.id, trial.lease_token)
    document = {**search.document, "objective": {"function": function}}
    with sqlite3.connect(path) as db:
        db.execute("UPDATE searches SET document = ? WHERE id = ?", (json.dumps(document), search.id))
    db.close()
    assert store.get_search(search.id).document["objective"]["function"] == function
    return search.id


def _run_worker(store: SQLiteStore, tmp_path: Path, allow: list[str]) -> Worker:
    options = WorkerOptions(
        burst=True,
        lease_seconds=30.0,
        heartbeat_seconds=5.0,
        allow_objective=allow,
        data_dir=tmp_path / "data",
        retry_max_delay=0.2,
    )
    worker = Worker(store, options)
    worker.work()
    return worker


# Every one of these is refused; with the old resolver each one ran ``touch <marker>``
# (subprocess.run/call receive the params dict, whose keys are the command line).
ATTACKS = [
    pytest.param(f"{PKG}.objs:subprocess.run", "must look like", id="attribute-chain-to-subprocess"),
    pytest.param(f"{PKG}.objs:os.system", "must look like", id="attribute-chain-to-os"),
    pytest.param(f"{PKG}.objs:run", "defined in module 'subprocess'", id="reexported-subprocess-run"),
    pytest.param(f"{PKG}.objs:call", "defined in module 'subprocess'", id="reexported-subprocess-call"),
    pytest.param(f"{PKG}.objs:rmtree", "defined in module 'shutil'", id="reexported-shutil"),
    pytest.param(f"{PKG}.objs:system", "not a plain Python function", id="reexported-builtin"),
    pytest.param(f"{PKG}.objs:builtin_alias", "not a plain Python function", id="builtin-alias"),
    pytest.param(f"{PKG}.objs:subprocess", "not a plain Python function", id="a-module"),
    pytest.param(f"{PKG}.objs:Touch", "not a plain Python function", id="a-class"),
    pytest.param(f"{PKG}.objs:instance", "not a plain Python function", id="callable-instance"),
    pytest.param(f"{PKG}.objs:partial_touch", "not a plain Python function", id="functools-partial"),
    pytest.param(f"{PKG}.objs:bound", "not a plain Python function", id="bound-method"),
    pytest.param(f"{PKG}.objs:anything", "has no 'anything'", id="module-getattr-hook"),
    pytest.param(f"{PKG}.objs:_touch", "must look like", id="private-name"),
    pytest.param(f"{PKG}.objs:__getattr__", "must look like", id="dunder-name"),
    pytest.param(f"{PKG}.objs:reexported", f"defined in module '{EVIL}.tools'", id="reexported-lookalike"),
    pytest.param(
        f"{EVIL}.tools:touch_marker", f"module '{EVIL}.tools' is not allowed", id="prefix-lookalike"
    ),
    pytest.param("os:system", "module 'os' is not allowed", id="stdlib-module"),
    pytest.param(f"{PKG}.objs:good\n", "must look like", id="trailing-newline"),
]


@pytest.mark.parametrize(("function", "reason"), ATTACKS)
def test_a_worker_refuses_objectives_outside_its_allowed_functions(
    packages: Path, store: SQLiteStore, tmp_path: Path, function: str, reason: str
) -> None:
    marker = tmp_path / "marker"
    # sorted keys make the argv: ["/bin/touch", "<marker>"]; "marker" is what the Python ones open
    params = {"/bin/touch": 0, str(marker): 0, "marker": str(marker)}
    search_id = _store_bypassing_validation(store, tmp_path / "store.db", function, params)
    allow = ["search_spaces.objectives", PKG]
    _run_worker(store, tmp_path, allow)
    (trial,) = store.list_trials(search_id)
    assert trial.state == TrialState.FAILED
    assert trial.error is not None and reason in trial.error, trial.error
    assert "Traceback" not in trial.error
    # the refusal says how to allow a module, never what this worker allows
    assert "search_spaces.objectives" not in trial.error
    assert not marker.exists()
    assert not (Path.cwd() / "marker").exists()


def test_an_allowed_plain_function_still_runs(packages: Path, store: SQLiteStore, tmp_path: Path) -> None:
    doc = _function_doc(f"{PKG}.objs:good", {"x": {"uniform": [-2, 2]}})
    search = store.create_search(search_spaces.validate(doc))
    worker = _run_worker(store, tmp_path, [PKG])
    assert worker.trials_run == 1
    (trial,) = store.list_trials(search.id)
    assert trial.state == TrialState.DONE
    assert trial.value == pytest.approx((trial.config["params"]["x"] - 1.0) ** 2)


def test_a_prefix_allows_only_whole_module_names(packages: Path, store: SQLiteStore, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    doc = _function_doc(f"{EVIL}.tools:touch_marker", {"marker": str(marker)})
    search = store.create_search(search_spaces.validate(doc))
    _run_worker(store, tmp_path, [PKG, f"{PKG}."])  # "hhsec_objs" and "hhsec_objs." allow no hhsec_objs_evil
    (trial,) = store.list_trials(search.id)
    assert trial.state == TrialState.FAILED and "is not allowed on this worker" in (trial.error or "")
    assert not marker.exists()


@pytest.mark.parametrize(
    "function",
    [
        "mypkg.objs:subprocess.run",
        "mypkg:os.system",
        "mypkg:a.b.c",
        "mypkg:_private",
        "mypkg:__call__",
        "mypkg.__main__:main",
        "mypkg:",
        ":f",
        "mypkg:f()",
        "mypkg: f",
    ],
)
def test_submit_refuses_attribute_chains_and_private_names(function: str) -> None:
    with pytest.raises(search_spaces.SpecError) as info:
        search_spaces.validate(_function_doc(function, {"x": {"uniform": [0, 1]}}))
    (error,) = info.value.errors
    assert error.loc == "objective.function"
    assert "one function name after the colon" in error.msg


def test_the_api_answers_422_naming_objective_function(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from hyperhive.settings import Settings
    from service.app import create_app

    settings = Settings(store=f"sqlite:///{tmp_path / 'api.db'}", home=tmp_path / "home", no_auth=True)  # type: ignore[call-arg]
    api_store = SQLiteStore(tmp_path / "api.db")
    try:
        client = TestClient(create_app(settings, api_store), raise_server_exceptions=False)
        doc = _function_doc("search_spaces.objectives:math.sqrt", {"x": {"uniform": [0, 1]}})
        response = client.post("/api/searches", json=doc)
        assert response.status_code == 422, response.text
        assert "objective.function" in response.text and "no attribute chain" in response.text
        assert api_store.count_searches() == 0
    finally:
        api_store.close()
