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

from hyperhive import search_spaces
from hyperhive.models import TrialState
from hyperhive.store import SQLiteStore
from hyperhive.workers.daemon import Worker, WorkerOptions

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
    packages: Path,
    store: SQLiteStore,
    tmp_path: Path,
    function: str,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative "marker" argument would land on the same file
    marker = tmp_path / "marker"
    # sorted keys make the argv: ["/bin/touch", "<marker>"]; "marker" is what the Python ones open
    params = {"/bin/touch": 0, str(marker): 0, "marker": str(marker)}
    search_id = _store_bypassing_validation(store, tmp_path / "store.db", function, params)
    allow = ["hyperhive.demo_objectives", PKG]
    _run_worker(store, tmp_path, allow)
    (trial,) = store.list_trials(search_id)
    assert trial.state == TrialState.FAILED
    assert trial.error is not None and reason in trial.error, trial.error
    assert "Traceback" not in trial.error
    # the refusal says how to allow a module, never what this worker allows
    assert "hyperhive.demo_objectives" not in trial.error
    assert not marker.exists()


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

    from hyperhive.service.app import create_app
    from hyperhive.settings import Settings

    settings = Settings(store=f"sqlite:///{tmp_path / 'api.db'}", home=tmp_path / "home", no_auth=True)  # type: ignore[call-arg]
    api_store = SQLiteStore(tmp_path / "api.db")
    try:
        client = TestClient(
            create_app(settings, api_store), raise_server_exceptions=False, base_url="http://127.0.0.1"
        )
        doc = _function_doc("hyperhive.demo_objectives:math.sqrt", {"x": {"uniform": [0, 1]}})
        response = client.post("/api/searches", json=doc)
        assert response.status_code == 422, response.text
        assert "objective.function" in response.text and "no attribute chain" in response.text
        assert api_store.count_searches() == 0
    finally:
        api_store.close()


# ---------------------------------------------------------------------------------------------- store import
def _export_line(tmp_path: Path, owner: str | None = "alice", **doc_overrides: Any) -> dict[str, Any]:
    """One exported search (a function search owned by ``owner``: one done trial, one queued with its
    config) as the dict of its JSON Lines record."""
    import io

    from hyperhive.models import TrialResult
    from hyperhive.store.exchange import export_searches

    source = SQLiteStore(tmp_path / "source.db")
    try:
        doc = {
            **_function_doc("hyperhive.demo_objectives:quadratic", {"x": {"uniform": [0, 1]}}),
            "max_trials": 3,
        }
        search = source.create_search(search_spaces.validate({**doc, **doc_overrides}), owner=owner)
        first = source.claim("w", 30.0)
        assert first is not None and first.lease_token is not None
        source.report(first.id, first.lease_token, TrialResult.done({"loss": 0.25}))
        second = source.claim("w", 30.0)
        assert second is not None and second.lease_token is not None
        source.release(second.id, second.lease_token)
        buf = io.StringIO()
        export_searches(source, [search.id], buf)
    finally:
        source.close()
    (line,) = buf.getvalue().splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def _import(target: SQLiteStore, record: dict[str, Any], **kw: Any) -> Any:
    from hyperhive.store.exchange import import_records

    return import_records(target, [json.dumps(record)], **kw)


def _queued(record: dict[str, Any]) -> dict[str, Any]:
    (trial,) = [t for t in record["trials"] if t["state"] == "queued"]
    return trial


TAMPERS = {
    "objective-attribute-chain": (
        lambda r: r["search"]["document"]["objective"].update(function=f"{PKG}.objs:subprocess.run"),
        "search.document.objective.function",
    ),
    "objective-private-name": (
        lambda r: r["search"]["document"]["objective"].update(function="hyperhive.demo_objectives:_numbers"),
        "search.document.objective.function",
    ),
    "document-out-of-bounds": (
        lambda r: r["search"]["document"].update(max_trials=10**9),
        "search.document.max_trials",
    ),
    "columns-disagree-with-document": (
        lambda r: r["search"].update(objective_metric="accuracy"),
        "search.objective_metric",
    ),
    "queued-config-replaced": (
        lambda r: _queued(r)["config"].update(params={"/bin/touch": 0, "/tmp/hh-marker": 0}),
        "trials[1].config",
    ),
    "vals-outside-the-space": (
        lambda r: _queued(r).update(vals={"params.x": [1e9]}),
        "trials[1].vals['params.x']",
    ),
    "done-trial-vals-outside-the-space": (
        lambda r: r["trials"][0].update(vals={"params.x": [float("inf")]}),
        "trials[0].vals['params.x']",
    ),
    "config-without-vals": (lambda r: _queued(r).update(vals=None), "trials[1].config"),
    "best-trial-of-another-search": (
        lambda r: r["search"].update(best_trial_id="someone-elses-trial"),
        "search.best_trial_id",
    ),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_store_import_checks_a_bundle_like_a_submitted_search(tmp_path: Path, tamper: str) -> None:
    record = _export_line(tmp_path)
    change, field = TAMPERS[tamper]
    change(record)
    target = SQLiteStore(tmp_path / "target.db")
    try:
        with pytest.raises(ValueError, match="line 1: ") as info:
            _import(target, record, owner="alice")
        assert field in str(info.value)
        assert target.count_searches() == 0 and target.list_trials(record["search"]["id"]) == []
    finally:
        target.close()


def test_store_import_refuses_worker_paths_for_a_non_admin_owner(tmp_path: Path) -> None:
    from hyperhive.store.codec import search_from_dict
    from hyperhive.store.vetting import OwnerPolicy, vet_search

    record = _export_line(tmp_path)
    target = SQLiteStore(tmp_path / "target.db")
    try:
        doc = {
            "name": "paths", "max_trials": 2, "algorithm": "random", "seed": 1,
            "dataset": {"path": "/data/faces.npz"}, "model": {"layers": [{"type": "Dense", "units": 4}]},
        }  # fmt: skip
        spec = search_spaces.validate(doc)
        search = search_from_dict({**record["search"], "document": spec.to_document(), "name": "paths",
                                   "objective_metric": spec.objective_metric,
                                   "objective_mode": spec.objective_mode, "best_trial_id": None})  # fmt: skip
        with pytest.raises(
            ValueError, match=r"dataset\.path: reading files on the worker machines is for admins"
        ):
            vet_search(target, search, [], OwnerPolicy("alice"))
        vet_search(target, search, [], OwnerPolicy(None))  # no owner: an admin's search
        target.create_token("root", admin=True)
        vet_search(target, search, [], OwnerPolicy("root"))
    finally:
        target.close()


def test_store_import_owner_comes_from_the_importer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hyperhive.cli import app

    record = _export_line(tmp_path, owner="root")  # the file claims an admin's name
    sid = record["search"]["id"]
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_text(json.dumps(record) + "\n")
    runner = CliRunner()
    for args, owner in [([], None), (["--owner", "bob"], "bob"), (["--keep-owners"], "root")]:
        db = tmp_path / f"target-{owner}.db"
        res = runner.invoke(app, ["store", "import", "--store", f"sqlite:///{db}", str(bundle), *args])
        assert res.exit_code == 0, res.output
        target = SQLiteStore(db)
        try:
            assert target.get_search(sid).owner == owner
            assert [t.state for t in target.list_trials(sid)] == ["done", "queued"]
        finally:
            target.close()
    res = runner.invoke(
        app,
        [
            "store",
            "import",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
            str(bundle),
            "--owner",
            "a",
            "--keep-owners",
        ],
    )
    assert res.exit_code == 2 and "not both" in res.output


def test_store_import_of_a_malicious_objective_fails_cleanly_on_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hyperhive.cli import app

    record = _export_line(tmp_path)
    record["search"]["document"]["objective"]["function"] = "hyperhive.demo_objectives:math.sqrt"
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_text(json.dumps(record) + "\n")
    db = tmp_path / "target.db"
    res = CliRunner().invoke(app, ["store", "import", "--store", f"sqlite:///{db}", str(bundle)])
    assert res.exit_code == 1
    assert "line 1" in res.output and "search.document.objective.function" in res.output
    assert "Traceback" not in res.output
    target = SQLiteStore(db)
    try:
        assert target.count_searches() == 0
    finally:
        target.close()


@pytest.mark.slow
def test_the_worker_command_refuses_a_reexported_subprocess_run(packages: Path, tmp_path: Path) -> None:
    """The same attack against ``hyperhive worker`` in its own process, as an operator runs it."""
    import os
    import subprocess

    db = tmp_path / "store.db"
    store = SQLiteStore(db)
    try:
        marker = tmp_path / "marker"
        params = {"/bin/touch": 0, str(marker): 0}
        search_id = _store_bypassing_validation(store, db, f"{PKG}.objs:run", params)
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(packages), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", "worker", "--store", f"sqlite:///{db}", "--cpu", "--burst",
         "--allow-objective", PKG],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = SQLiteStore(db)
    try:
        (trial,) = store.list_trials(search_id)
        assert trial.state == TrialState.FAILED
        assert "defined in module 'subprocess'" in (trial.error or "")
    finally:
        store.close()
    assert not marker.exists()
