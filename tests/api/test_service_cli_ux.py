"""CLI rough edges found by using the product: a search whose every trial failed is not a success,
``run``/``up --submit`` check the file before starting anything, help texts keep their defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hyperhive.cli import app
from hyperhive.service.cli_client import (
    exit_status,
    follow_and_report,
    follow_until_interrupted,
    no_result_note,
)

ERROR = "ObjectiveRefused: objective function 'os:system' refused"


class FakeClient:
    """Answers ``get_search`` with a final search and ``trials`` with its last failed trial."""

    def __init__(self, search: dict[str, Any], last_error: str | None = ERROR) -> None:
        self.search, self.last_error = search, last_error
        self.trial_queries: list[dict[str, Any]] = []

    def get_search(self, search_id: str) -> dict[str, Any]:
        return self.search

    def workers(self) -> list[dict[str, Any]]:
        return [{"state": "alive"}]

    def trials(self, search_id: str, **query: Any) -> dict[str, Any]:
        self.trial_queries.append(query)
        items = [{"state": "failed", "error": self.last_error}] if self.last_error else []
        return {"items": items, "total": len(items)}


def final_search(status: str = "completed", done: int = 0, failed: int = 3) -> dict[str, Any]:
    counts = {"queued": 0, "running": 0, "done": done, "failed": failed, "pruned": 0, "cancelled": 0}
    return {
        "id": "s1",
        "name": "x",
        "status": status,
        "max_trials": done + failed,
        "counts": {**counts, "finished": done + failed},
        "progress": 1.0,
        "objective_metric": "loss",
        "objective_mode": "min",
        "best": {"value": 1.0, "number": 0, "id": "t0", "config": {}} if done else None,
        "best_value": 1.0 if done else None,
        "error": None,
    }


@pytest.mark.parametrize(
    ("search", "code"),
    [
        (final_search("completed", done=2, failed=1), 0),
        (final_search("completed", done=0, failed=3), 1),  # the budget spent, nothing to show
        (final_search("cancelled", done=0, failed=0), 0),
        (final_search("failed", done=0, failed=5), 1),
    ],
)
def test_exit_status(search: dict[str, Any], code: int) -> None:
    assert exit_status(search) == code


def test_a_completed_search_without_a_done_trial_fails_with_the_last_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: every trial failed (fewer than max_consecutive_failures) -> `completed`, exit 0, no
    word of why. Now exit 1 with the last trial error."""
    client = FakeClient(final_search())
    assert follow_and_report(client, "s1", interval=0.01, detail=False) == 1
    err = capsys.readouterr().err
    assert "no trial succeeded (3 failed" in err and ERROR in err
    assert client.trial_queries == [{"state": "failed", "sort": "finished_at", "order": "desc", "limit": 1}]
    assert no_result_note(FakeClient(final_search(done=1)), final_search(done=1)) is None


@pytest.mark.parametrize("command", ["run", "up"])
def test_run_checks_the_file_before_starting_anything(command: str, tmp_path: Path) -> None:
    """Regression: a broken file started the store, API and workers, then failed on submit."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmax_trial: 3\nparams: {x: {uniform: [2, 1]}}\n")
    home = tmp_path / "home"
    args = [command, str(bad)] if command == "run" else [command, "--submit", str(bad)]
    r = CliRunner().invoke(app, [*args, "--home", str(home)])
    assert r.exit_code == 1, r.output
    out = " ".join(r.output.split())
    assert f"error: {bad}: max_trial: unknown key" in out and "params.x: uniform needs low < high" in out
    assert "Traceback" not in r.output and not home.exists()


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (["up"], "default sqlite:///.hyperhive/hyperhive.db"),
        (["up"], "default 8000, or a free one if taken"),
        (["serve"], "env HYPERHIVE_PORT; default 8000"),
        (["run"], "default: the lecture CNN example"),
        (["status"], "env HYPERHIVE_URL"),
    ],
)
def test_help_shows_defaults(command: list[str], text: str) -> None:
    """Regression: rich read '[env ...; default ...]' as markup and printed nothing of it."""
    r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert r.exit_code == 0
    assert text in re.sub(r"\s+", " ", r.output)


class InterruptedClient(FakeClient):
    """The first poll answers a running search; the next one is interrupted by Ctrl-C."""

    def __init__(self) -> None:
        super().__init__(final_search())
        self.polls = 0

    def get_search(self, search_id: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls > 1:
            raise KeyboardInterrupt
        return {**self.search, "status": "running"}


def test_ctrl_c_while_following_says_the_search_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: Ctrl-C during `submit --follow` printed only 'interrupted'."""
    with pytest.raises(typer.Exit) as exc:
        follow_until_interrupted(InterruptedClient(), "s1", interval=0.01, as_json=False)
    assert exc.value.exit_code == 130
    err = " ".join(capsys.readouterr().err.split())
    assert "stopped following; search s1 goes on (hyperhive follow s1 | hyperhive cancel s1)" in err


class ScriptedClient:
    """Answers ``get_search`` from a list of states (the last one repeats) and ``workers`` as given."""

    def __init__(self, states: list[dict[str, Any]], alive: int = 1) -> None:
        self.states, self.alive, self.polls = states, alive, 0

    def get_search(self, search_id: str) -> dict[str, Any]:
        s = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        return s

    def workers(self) -> list[dict[str, Any]]:
        return [{"state": "alive"}] * self.alive + [{"state": "lost"}, {"state": "stopped"}]


def search_state(status: str, done: int, failed: int, running: int, max_trials: int = 30) -> dict[str, Any]:
    s = final_search(status, done=done, failed=failed)
    s["counts"]["running"], s["max_trials"], s["name"] = running, max_trials, "quad"
    s["best_value"] = 0.5 if done else None
    return s


def test_progress_says_each_count_once() -> None:
    """Regression: `5/30 running 1 running` and `3/3 completed 0 running, 3 failed best: -`."""
    from hyperhive.service.follow import progress_line

    line = progress_line(search_state("running", done=4, failed=1, running=1))
    assert line == "search s1 (quad) 5/30: 4 done, 1 failed, 1 running, 24 queued; best loss 0.5"
    for word in ("done", "running", "failed", "queued"):
        assert line.count(word) == 1
    line = progress_line(search_state("completed", done=0, failed=3, running=0, max_trials=3))
    assert line == "search s1 (quad) 3/3: 0 done, 3 failed; no result; completed"


def test_follow_into_a_pipe_prints_progress_lines_and_says_when_no_worker_is_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: `follow` printed nothing until the end when its output was a pipe or a file."""
    import io

    from rich.console import Console

    from hyperhive.service import follow as follow_module
    from hyperhive.service.follow import NO_WORKER, follow

    monkeypatch.setattr(follow_module, "WORKER_CHECK_SECONDS", 0.0)

    states = [search_state("running", 0, 0, 0)] * 3 + [search_state("running", 2, 0, 1)]
    states += [search_state("completed", 30, 0, 0)]
    out = io.StringIO()
    client = ScriptedClient(states, alive=0)
    final = follow(client, "s1", console=Console(file=out), interval=0.01, line_seconds=0.0)  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert final["status"] == "completed" and len(lines) == 5
    assert lines[0] == f"search s1 (quad) 0/30: 0 done, 30 queued; no result yet; {NO_WORKER}"
    assert lines[3] == "search s1 (quad) 2/30: 2 done, 1 running, 27 queued; best loss 0.5"
    assert lines[-1].startswith("search s1 (quad) 30/30: 30 done; best loss 0.5; completed")
    out = io.StringIO()
    follow(ScriptedClient(states, alive=1), "s1", console=Console(file=out), interval=0.01, line_seconds=0.0)  # type: ignore[arg-type]
    assert NO_WORKER not in out.getvalue()
