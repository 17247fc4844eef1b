"""``hyperhive run`` and ``up`` with real ``hyperhive worker`` processes: the one-command main job (the
bundled lecture CNN trained end to end, shortened), a function search, and the API server killed and
restarted during a search while worker processes go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from servicekit import EXAMPLES, LiveServer, cli_env, default_signals, free_port, function_yaml, hyperhive

from hyperhive.client import Client
from hyperhive.store import SQLiteStore

pytestmark = pytest.mark.slow


def test_run_lecture_example_end_to_end(tmp_path: Path) -> None:
    """The README's main job (one worker, as `hyperhive run` starts), with 2 trials of 2 epochs instead of 20
    of 3."""
    doc = yaml.safe_load((EXAMPLES / "lecture-cnn.yaml").read_text())
    doc["max_trials"], doc["training"]["epochs"] = 2, 2
    (tmp_path / "lecture.yaml").write_text(yaml.safe_dump(doc))
    r = hyperhive("run", "lecture.yaml", "--port", str(free_port()), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "completed: 2/2 trials, best val_accuracy" in r.stdout
    assert "metrics.val_accuracy" in r.stdout and "config.model.layers[0].filters" in r.stdout
    assert "hyperhive stopped" in r.stderr and "Traceback" not in r.stderr
    store = SQLiteStore(tmp_path / ".hyperhive" / "hyperhive.db")
    [search] = store.list_searches()
    trials = store.list_trials(search.id)
    store.close()
    assert search.status == "completed" and [t.state for t in trials] == ["done"] * 2
    best = max(trials, key=lambda t: t.value or 0)
    assert best.metrics["val_confusion_matrix"] and len(best.history) == 2 and 0 < best.value <= 1  # type: ignore[operator]


def test_run_says_when_workers_cannot_start_or_there_are_none(tmp_path: Path) -> None:
    """Workers that cannot start, and none at all. (A function search run to the end by two workers:
    test_run_allow_objective_flag_and_the_hint_that_names_it.)"""
    (tmp_path / "f.yaml").write_text(function_yaml(10))
    # workers that cannot start: a clear message, a non-zero exit, no hang
    r = hyperhive(
        "run", "f.yaml", "--worker-arg=--no-such-flag", "--port", str(free_port()), cwd=tmp_path, timeout=120
    )
    assert r.returncode == 1 and "every worker exited" in r.stderr and "Traceback" not in r.stderr
    r = hyperhive("run", "f.yaml", "--workers", "0", cwd=tmp_path)
    assert r.returncode == 1 and "no workers" in r.stderr


def test_run_says_failed_when_no_trial_succeeded_or_the_document_cannot_run(tmp_path: Path) -> None:
    """Every trial raising spends the budget with nothing to show: ``failed`` with the last error (not
    ``completed``), exit 1. An objective that cannot be imported fails the search after one trial."""
    (tmp_path / "hh_failing.py").write_text(
        "def always(params):\n    raise RuntimeError(f'always fails at x={params[\"x\"]:.2f}')\n"
    )
    env = cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    doc = {
        "name": "doomed",
        "max_trials": 3,
        "algorithm": "random",
        "objective": {"function": "hh_failing:always"},
        "params": {"x": {"uniform": [0, 1]}},
    }
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(doc))
    args = ("--port", str(free_port()), "--worker-arg=--allow-objective=hh_failing")
    r = hyperhive("run", "f.yaml", *args, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "failed: 3/3 trials; no trial succeeded (3 failed); last error: RuntimeError: always fails" in out
    assert "completed" not in out and "Traceback" not in r.stderr

    doc.update(name="unimportable", max_trials=20, objective={"function": "hh_failing:nope"})
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(doc))
    r = hyperhive("run", "g.yaml", *args, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "failed: 1/20 trials; trial 0 failed because of the search document: ObjectiveError:" in out
    assert "has no 'nope'" in out

    store = SQLiteStore(tmp_path / ".hyperhive" / "hyperhive.db")
    statuses = {s.name: (s.status, s.counts.total) for s in store.list_searches()}
    store.close()
    assert statuses == {"doomed": ("failed", 3), "unimportable": ("failed", 1)}


def test_up_example_with_workers_stops_cleanly_mid_search(tmp_path: Path) -> None:
    """SIGINT while workers train: they hand their trials back, nothing is left running."""
    doc = yaml.safe_load(function_yaml(10_000, "long"))
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(doc))
    args = ["up", "--workers", "2", "--port", str(free_port()), "--submit", "long.yaml"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", *args],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals,
    )  # fmt: skip
    db = tmp_path / ".hyperhive" / "hyperhive.db"
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and done < 20:
            time.sleep(0.2)
            if db.exists():
                store = SQLiteStore(db)
                done = sum(s.counts.done for s in store.list_searches())
                store.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert done >= 20, err
    assert proc.returncode == 0, err
    assert "exited with status" not in err and "Traceback" not in err
    store = SQLiteStore(db)
    [search] = store.list_searches()
    assert store.count_trials(search.id, state="running") == 0
    assert search.counts.running == 0 and search.status == "running"
    workers = store.list_workers()
    store.close()
    assert len(workers) == 2 and all(w.status == "stopped" for w in workers), workers


def test_api_restart_with_worker_processes(tmp_path: Path) -> None:
    """Kill -9 the API mid-search: the `hyperhive worker` processes go on against the store; a `follow`
    rides through the outage; a new server on the same file and port serves the finished search with
    every trial."""
    db = tmp_path / "hh.db"
    r = hyperhive("token", "create", "alice", "--store", f"sqlite:///{db}", "--create", cwd=tmp_path)
    token = r.stdout.strip().splitlines()[-1]
    server = LiveServer(db, tmp_path)
    server.start()
    n = 60
    # 50 ms a trial: 60 trials on two workers outlast the kill below (a random trial alone takes ~2 ms, so the
    # whole search could end before the server is down and the test would see no trial finish without it)
    (tmp_path / "slowobj.py").write_text(
        "import time\n\ndef branin(params):\n    time.sleep(0.05)\n"
        "    from hyperhive.demo_objectives import branin\n    return branin(params)\n"
    )
    yaml_text = function_yaml(n, "restart").replace("hyperhive.demo_objectives:branin", "slowobj:branin")
    sid = Client(server.url, token).submit(yaml_text, "yaml")["id"]
    env = cli_env(HYPERHIVE_URL=server.url, HYPERHIVE_TOKEN=token)
    follower = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "follow", sid, "--json", "--interval", "0.2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    workers: list[subprocess.Popen[bytes]] = []
    store = SQLiteStore(db)
    try:
        # the follower is connected first (its polls are the only GETs of the search): on a busy machine
        # its start-up can take longer than the whole search, which would then end before the kill
        deadline = time.monotonic() + 120
        while f"GET /api/searches/{sid} 200" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker_cmd = [sys.executable, "-m", "hyperhive.cli", "worker", "--store", f"sqlite:///{db}", "--cpu"]
        worker_cmd += ["--idle-exit", "3", "--allow-objective", "slowobj"]
        for _ in range(2):
            workers.append(
                subprocess.Popen(
                    worker_cmd,
                    cwd=tmp_path,
                    env=cli_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        while store.get_search(sid).counts.finished < 5:
            time.sleep(0.05)
        server.kill()
        at_kill = store.get_search(sid).counts.finished
        time.sleep(1.0)
        assert store.get_search(sid).counts.finished > at_kill, "workers stopped with the API server"
        server.start()
        out, err = follower.communicate(timeout=120)
        s = Client(server.url, token).get_search(sid)
        trials = Client(server.url, token).trials(sid, limit=1000)["items"]
    finally:
        store.close()
        if follower.poll() is None:
            follower.kill()
        server.stop()
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(30)
    assert follower.returncode == 0, err
    page = json.loads(out)
    assert page["status"] == "completed" and page["counts"]["done"] == n
    assert s["status"] == "completed" and s["counts"]["done"] == n and s["counts"]["total"] == n
    assert sorted(t["number"] for t in trials) == list(range(n))
    assert all(t["state"] == "done" and t["value"] is not None for t in trials)
    assert s["best_value"] == pytest.approx(min(t["value"] for t in trials))


def test_run_allow_objective_flag_and_the_hint_that_names_it(tmp_path: Path) -> None:
    """`run` takes --allow-objective for its workers; without it the refusal says which flag to add.
    Each `run` works on its own search only (regression: `run FILE` also ran every other unfinished search
    in the store, twice as long): an unfinished search already in the store stays queued, untouched."""
    from hyperhive import search_spaces

    (tmp_path / ".hyperhive").mkdir()
    store = SQLiteStore(tmp_path / ".hyperhive" / "hyperhive.db")
    other = store.create_search(search_spaces.load(function_yaml(50, "other"), "yaml"), owner="local")
    store.close()
    (tmp_path / "myobj.py").write_text("def score(params):\n    return (params['x'] - 1.0) ** 2\n")
    doc = yaml.safe_load(function_yaml(4, "mine"))
    doc["objective"] = {"function": "myobj:score"}
    del doc["params"]["y"]
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(doc))
    r = hyperhive("run", "mine.yaml", "--port", str(free_port()), cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "start `hyperhive run` again with --allow-objective myobj" in r.stdout + r.stderr
    args = ("--allow-objective", "myobj", "--workers", "2", "--port", str(free_port()))
    r = hyperhive("run", "mine.yaml", *args, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "completed: 4/4 trials, best loss" in r.stdout
    assert f"1 other unfinished search(es) in this store stay queued (e.g. {other.id})" in r.stderr
    env = cli_env(HYPERHIVE_ALLOW_OBJECTIVE="other,myobj")
    r = hyperhive("run", "mine.yaml", "--port", str(free_port()), cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    store = SQLiteStore(tmp_path / ".hyperhive" / "hyperhive.db")
    untouched = store.get_search(other.id)
    store.close()
    assert untouched.counts.finished == 0 and untouched.counts.running == 0


def test_run_on_a_gpu_the_machine_lacks_warns_and_records_the_device(tmp_path: Path) -> None:
    """Regression: `--gpus 0` on a machine without that GPU trained on the CPU silently. GPU 7 is missing
    on CI and on a one-GPU device: a warning up front, and each trial records the device it used."""
    doc = yaml.safe_load((EXAMPLES / "lecture-cnn.yaml").read_text())
    doc["max_trials"], doc["training"]["epochs"] = 1, 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(doc))
    r = hyperhive("run", "tiny.yaml", "--gpus", "7", "--port", str(free_port()), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: --gpus 7: this machine has no NVIDIA GPU 7" in r.stderr
    store = SQLiteStore(tmp_path / ".hyperhive" / "hyperhive.db")
    [search] = store.list_searches()
    [trial] = store.list_trials(search.id)
    store.close()
    assert trial.info["gpus"] == "7" and trial.info["devices"] == ["cpu"]
    log = (tmp_path / ".hyperhive" / "logs" / "worker-0.log").read_text()
    assert "GPU 7 was asked for but the backend sees none: training on the CPU" in log
