"""benchmarks/report.py finds the benchmarks by name: it runs those present (with their quick settings),
runs a script it does not know, says which known ones are missing, and reports a failing one as failed
while the others still run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPORT = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"

TABLE = """\
import sys
print("args", sys.argv[1:])
print("name  p50 ms  p95 ms")
print("x     1.0     2.0")
"""


def load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", REPORT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def script(folder: Path, name: str, body: str, quick: bool = True) -> None:
    flag = 'QUICK = "--quick"\n' if quick else ""
    (folder / f"{name}.py").write_text(
        f'"""{name} for the test."""\n{flag}{body}\nif __name__ == "__main__":\n    pass\n'
    )


def test_report_runs_what_is_there_and_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = load_report()
    script(tmp_path, "core_overhead", TABLE)
    script(tmp_path, "tpe_scale", "raise SystemExit(3)")
    script(tmp_path, "search_quality", TABLE, quick=False)
    script(tmp_path, "brand_new", TABLE)
    (tmp_path / "helpers.py").write_text("X = 1\n")  # a module, not a benchmark
    monkeypatch.setattr(report, "HERE", tmp_path)
    benches, absent = report.discover()
    assert [b.name for b in benches] == ["core_overhead", "tpe_scale", "search_quality", "brand_new"]
    assert absent == ["worker_overhead", "dashboard", "load"]
    assert {b.name: b.quick for b in benches}["search_quality"] == (), "no --quick for a script without one"
    out = tmp_path / "RESULTS.md"
    assert report.main(["--quick", "--output", str(out)]) == 1, "a failed benchmark fails the run"
    text = out.read_text()
    assert "not in this checkout, so not run: worker_overhead, dashboard, load" in text
    assert "`python benchmarks/core_overhead.py --quick`" in text and "args ['--quick']" in text
    assert "`python benchmarks/search_quality.py`" in text
    assert "## tpe_scale" in text and "exit status 3" in text
    assert "## brand_new" in text and "brand_new for the test" in text
    assert text.count("p50 ms  p95 ms") == 3
    assert f"Python {sys.version.split()[0]}" in text
    assert report.main(["--only", "brand_new", "--output", str(out)]) == 0
    assert "## core_overhead" not in out.read_text()
