"""Export / import between stores: SQLite -> MongoDB (mongomock) -> SQLite loses nothing, and the
``hyperhive store`` commands."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import mongomock
import pytest
import yaml
from mongokit import FakeClock, make_mongo_store
from typer.testing import CliRunner

from hyperhive.cli import app
from hyperhive.models import DatasetInfo, Search, TrialResult, TrialState
from hyperhive.search_spaces import validate
from hyperhive.store import SQLiteStore, Store
from hyperhive.store.exchange import export_searches, import_records
from hyperhive.store.mongo import MongoStore

EXAMPLES = Path(__file__).resolve().parents[2] / "search_spaces" / "examples"
DATA = bytes(range(256)) * 40_000 + b"tail"  # ~10 MB: more than two 4 MiB MongoDB chunks


def _spec(name: str, max_trials: int, **overrides: Any) -> Any:
    doc = yaml.safe_load((EXAMPLES / "architecture-swap.yaml").read_text())
    doc.update(name=name, max_trials=max_trials, algorithm="random", **overrides)
    return validate(doc)


def populate(store: Store, clock: FakeClock) -> dict[str, Search]:
    """Searches in every state, trials in every state, histories, metrics, info, an uploaded dataset."""
    store.clock = clock
    store.save_dataset(
        DatasetInfo(
            id="upload-1", name="faces.npz", owner="alice", size=len(DATA),
            sha256=hashlib.sha256(DATA).hexdigest(), created_at=clock(), meta={"classes": 7, "shape": [8, 8]},
        ),
        [DATA[:3_000_000], DATA[3_000_000:]],
    )  # fmt: skip
    done = store.create_search(_spec("done", 5, dataset={"upload": "upload-1"}), owner="alice")
    outcomes = [
        TrialResult.done({"val_accuracy": 0.71, "loss": 0.9}, history=[{"epoch": 1, "val_accuracy": 0.71}]),
        TrialResult.failed("OOM on GPU 0", info={"host": "gpu-1"}),
        TrialResult(state=TrialState.PRUNED, history=[{"epoch": 1, "val_accuracy": 0.2}]),
        TrialResult.done({"val_accuracy": 0.93, "confusion": [[1, 0], [0, 1]]}, info={"tf": "2.21"}),
        TrialResult.done({"val_accuracy": 0.88}),
    ]
    for result in outcomes:
        clock.advance(3)
        t = store.claim("w1", 30)
        assert t and t.lease_token
        store.heartbeat(t.id, t.lease_token, 30, [{"epoch": 1, "val_accuracy": 0.5}])
        store.report(t.id, t.lease_token, result)
    cancelled = store.create_search(_spec("cancelled", 4), owner="bob")
    for _ in range(2):
        store.claim("w2", 30, search_id=cancelled.id)
    store.cancel_search(cancelled.id)
    running = store.create_search(_spec("running", 6, seed=None), owner=None)
    t = store.claim("w3", 30, search_id=running.id)
    assert t and t.lease_token
    store.report(t.id, t.lease_token, TrialResult.done({"val_accuracy": 0.5}))
    store.claim("w3", 30, search_id=running.id)  # stays running: arrives queued
    queued = store.claim("w3", 30, search_id=running.id)
    assert queued and queued.lease_token
    store.release(queued.id, queued.lease_token)
    store.create_token("alice")
    return {s.name: store.get_search(s.id) for s in (done, cancelled, running)}


def assert_same_contents(a: Store, b: Store) -> None:
    """Every search, trial and dataset of ``a`` is in ``b`` with the same fields, except that running
    trials were imported as queued (lease, worker and counts moved accordingly, version bumped: readers
    of the version change feed must see it)."""
    a_searches = {s.id: s for s in a.list_searches(limit=1000)}
    assert {s.id for s in b.list_searches(limit=1000)} == set(a_searches)
    for sid, sa in a_searches.items():
        sb = b.get_search(sid)
        da, db = sa.to_dict(), sb.to_dict()
        running = sa.counts.running
        da["counts"]["queued"] += running
        da["counts"]["running"] = 0
        assert db == da, sid
        ta = {t.id: t for t in a.list_trials(sid)}
        tb = {t.id: t for t in b.list_trials(sid)}
        assert set(ta) == set(tb)
        for tid, trial in ta.items():
            want = trial.to_dict()
            if trial.state == TrialState.RUNNING:
                want.update(state="queued", lease_token=None, lease_expires_at=None, worker_id=None)
                want["version"] += 1
            assert tb[tid].to_dict() == want, tid
    for info in a.list_datasets():
        assert b.get_dataset(info.id) == info
        assert b"".join(b.read_dataset(info.id)) == b"".join(a.read_dataset(info.id))


def _roundtrip_file(source: Store, target: Store) -> str:
    buf = io.StringIO()
    ids = [s.id for s in source.list_searches(limit=1000)]
    export_searches(source, ids, buf)
    text = buf.getvalue()
    import_records(target, io.StringIO(text), keep_owners=True)  # one deployment moving its store
    return text


def test_sqlite_to_mongo_to_sqlite_loses_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    original = SQLiteStore(tmp_path / "a.db")
    populate(original, clock)
    mongo, cleanup = make_mongo_store()
    back = SQLiteStore(tmp_path / "b.db")
    try:
        text = _roundtrip_file(original, mongo)
        kinds = [json.loads(line)["format"] for line in text.splitlines()]
        assert kinds[0] == "hyperhive-dataset/1" and kinds.count("hyperhive-export/1") == 3
        assert kinds.count("hyperhive-dataset-chunk/1") == 2
        assert_same_contents(original, mongo)
        _roundtrip_file(mongo, back)
        assert_same_contents(mongo, back)
        assert_same_contents(original, back)
        assert back.list_tokens() == [] and len(original.list_tokens()) == 1, "tokens stay behind"
        assert mongo._chunks.count_documents({"dataset_id": "upload-1"}) == 3, "re-cut to 4 MiB documents"
        # the imported searches go on: the queued trials first, then new slots with the next numbers
        running = next(s for s in mongo.list_searches() if s.name == "running")
        mongo.clock = clock
        numbers = [t.number for t in iter(lambda: mongo.claim("w9", 30, search_id=running.id), None)]
        assert sorted(numbers) == [1, 2, 3, 4, 5]
    finally:
        cleanup()
        original.close()
        back.close()


def test_import_refuses_duplicates_unless_asked_and_names_the_line(tmp_path: Path) -> None:
    source = SQLiteStore(tmp_path / "a.db")
    populate(source, FakeClock())
    mongo, cleanup = make_mongo_store()
    try:
        text = _roundtrip_file(source, mongo)
        with pytest.raises(Exception, match=r"line 4: search .* already exists"):
            import_records(mongo, io.StringIO(text))
        summary = import_records(mongo, io.StringIO(text), skip_existing=True)
        assert summary.searches == 0 and len(summary.skipped) == 4  # 3 searches + the identical dataset
    finally:
        cleanup()


def test_corrupted_dataset_bytes_are_refused(tmp_path: Path) -> None:
    source = SQLiteStore(tmp_path / "a.db")
    populate(source, FakeClock())
    buf = io.StringIO()
    export_searches(source, [s.id for s in source.list_searches()], buf)
    lines = buf.getvalue().splitlines()
    chunk = json.loads(lines[1])
    chunk["data"] = chunk["data"][:-8] + "AAAAAAAA"
    lines[1] = json.dumps(chunk)
    target = SQLiteStore(tmp_path / "b.db")
    with pytest.raises(ValueError, match="line 1: dataset upload-1's bytes do not match"):
        import_records(target, lines)
    assert target.list_datasets() == []


def test_bad_lines_are_named() -> None:
    target, cleanup = make_mongo_store()
    try:
        with pytest.raises(ValueError, match="line 2: not JSON"):
            import_records(target, ["", "{oops"])
        with pytest.raises(ValueError, match="line 1: unknown record format 'x'"):
            import_records(target, ['{"format": "x"}'])
        with pytest.raises(ValueError, match="line 1: a dataset chunk without its dataset"):
            import_records(target, ['{"format": "hyperhive-dataset-chunk/1", "dataset_id": "d", "seq": 0}'])
    finally:
        cleanup()


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def mongo_client(monkeypatch: pytest.MonkeyPatch) -> mongomock.MongoClient:
    """``mongodb://`` URLs opened by the CLI land on one mongomock client."""
    client: Any = mongomock.MongoClient()
    monkeypatch.setattr(MongoStore, "client_factory", staticmethod(lambda url, **kw: client))
    return client


def test_cli_moves_searches_sqlite_to_mongo_and_back(tmp_path: Path, mongo_client: Any) -> None:
    runner = CliRunner()
    source = SQLiteStore(tmp_path / "a.db")
    searches = populate(source, FakeClock())
    mongo_url = "mongodb://hh:secret@mongo.internal/hive?authSource=admin"
    dump = tmp_path / "dump.jsonl"
    res = runner.invoke(
        app, ["store", "export", "--store", f"sqlite:///{source.path}", "--all", "-o", str(dump)]
    )
    assert res.exit_code == 0, res.output
    assert "exported 3 searches (10 trials), 1 dataset (10.2 MB)" in res.output
    res = runner.invoke(app, ["store", "import", "--store", mongo_url, str(dump), "--keep-owners"])
    assert res.exit_code == 0, res.output
    assert "imported 3 searches" in res.output and "secret" not in res.output and "hh:***@" in res.output
    res = runner.invoke(app, ["store", "ping", "--store", mongo_url])
    assert res.exit_code == 0 and "MongoStore" in res.output and "(3 searches)" in res.output
    one = tmp_path / "one.jsonl"
    done_id = searches["done"].id
    res = runner.invoke(app, ["store", "export", "--store", mongo_url, done_id, "--out", str(one)])
    assert res.exit_code == 0, res.output
    back = SQLiteStore(tmp_path / "back.db")
    res = runner.invoke(
        app, ["store", "import", "--store", f"sqlite:///{back.path}", str(one), "--keep-owners"]
    )
    assert res.exit_code == 0, res.output
    assert [s.id for s in back.list_searches()] == [done_id]
    assert back.get_search(done_id).to_dict() == source.get_search(done_id).to_dict()
    res = runner.invoke(app, ["store", "import", "--store", f"sqlite:///{back.path}", str(one)])
    assert res.exit_code == 1 and "already exists" in res.output and "--skip-existing" in res.output
    res = runner.invoke(app, ["store", "export", "--store", mongo_url, "--all", "--no-datasets", "-o", "-"])
    assert res.exit_code == 0 and "hyperhive-dataset" not in res.stdout
    assert len(res.stdout.splitlines()) == 3


def test_cli_errors_are_one_line_with_an_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["store", "export", "--store", "sqlite:///x.db", "-o", "f.jsonl"])
    assert res.exit_code == 2 and "name the searches to export, or pass --all" in res.output
    res = runner.invoke(app, ["store", "ping", "--store", "mongodb://db:99999/hive"])
    assert res.exit_code == 2 and "error: bad MongoDB store URL" in res.output
    url = "mongodb://127.0.0.1:1/hive?serverSelectionTimeoutMS=200"
    res = runner.invoke(app, ["store", "export", "--store", url, "--all", "-o", str(tmp_path / "f")])
    assert res.exit_code == 3 and "cannot reach MongoDB at 127.0.0.1:1" in res.output
    assert "Traceback" not in res.output
    SQLiteStore(tmp_path / "empty.db").close()
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    res = runner.invoke(app, ["store", "export", "--store", db, "nope", "-o", str(tmp_path / "f")])
    assert res.exit_code == 1 and "search 'nope' not found" in res.output
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.partial").exists()


@pytest.mark.slow
def test_ping_and_export_refuse_a_sqlite_store_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walk-through: `hyperhive store ping --store sqlite:///typo.db` created an empty store and said `ok`.
    ping and export now refuse a missing SQLite file (as token and worker do); import still starts one.
    (In process, run from tmp_path: relative SQLite paths resolve against the working folder.)"""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, ["store", *args])

    for args in (["ping"], ["export", "--all", "-o", "out.jsonl"]):
        r = cli(*args, "--store", "sqlite:///typo.db")
        assert r.exit_code == 2 and f"no store at {tmp_path / 'typo.db'}" in r.output, r.output
        assert "Traceback" not in r.output and not (tmp_path / "typo.db").exists()
    source = SQLiteStore(tmp_path / "real.db")
    source.create_search(_spec("moved", 2))
    source.close()
    assert cli("export", "--all", "-o", "out.jsonl", "--store", "sqlite:///real.db").exit_code == 0
    r = cli("import", "out.jsonl", "--store", "sqlite:///new.db")
    assert r.exit_code == 0 and "imported 1 search" in r.output, r.output
    r = cli("ping", "--store", "sqlite:///new.db")
    assert r.exit_code == 0 and "(1 searches)" in r.output
