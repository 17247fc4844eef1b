"""Runs every benchmark in this folder and writes their tables to ``benchmarks/RESULTS.md``.

The benchmarks are found by name in this folder (see :data:`KNOWN`: one that is missing is reported as
missing, and a script not named there runs too). Each runs in its own process, one after the other
(never two at once: they would measure each other), and its printed tables go to the report as they are,
with the command that produced them, its wall time and exit status; a benchmark that fails is reported
as failed and the others still run. The report starts with the machine (CPU, cores, memory, load
average before the run), the Python version and the git commit. The peers' figures (hyperopt's fmin and
``tpe.suggest``, Optuna, Optuna with SQLite, optuna-dashboard) come from the same run, measured by each
benchmark beside Hyperhive's.

Run: ``.venv/bin/python benchmarks/report.py`` (full settings, the better part of an hour on 2 cores) or
``--quick`` (every benchmark's smoke settings, a few minutes); ``--only load,tpe_scale`` for a subset;
``--output PATH`` to write elsewhere; ``--list`` shows what would run. On a shared machine, read medians
and ratios of the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None
    """``None``: ``--quick`` if the script takes it, else its defaults."""


KNOWN = [
    Bench(
        "core_overhead",
        "per-trial overhead, throughput with 1-2 workers and TPE ask latency, against hyperopt's fmin "
        "and Optuna; and the real path (REST submit, `hyperhive worker --cpu` processes, API status) "
        "for random search with 1-2 workers and TPE at 1,000 / 3,000 finished trials",
        (),
        None,
    ),
    Bench(
        "tpe_scale", "TPE suggestions as finished trials grow, against hyperopt and Optuna", (), ("--quick",)
    ),
    Bench(
        "search_quality",
        "how soon each optimiser finds the optimum of a table of real trainings (digits CNNs)",
        (),
        None,
    ),
    Bench("worker_overhead", "time per Keras trial spent outside model.fit", (), ("--quick",)),
    Bench(
        "dashboard",
        "dashboard endpoints and pages on a large search, against optuna-dashboard",
        (),
        ("--trials", "2000", "--repeat", "3", "--rounds", "1"),
    ),
    Bench(
        "load",
        "concurrent HTTP clients against hyperhive serve on a filled store, a worker running",
        ("--seconds", "60"),
        ("--seconds", "10", "--searches", "20", "--trials", "250"),
    ),
]
"""The benchmarks in report order, with their settings. A script named here that this checkout lacks
is listed as absent in the report (benchmarks are added and renamed by other work); a script in this
folder that is not named here runs after them with its own defaults (``--quick`` when it takes one)."""

# modules the benchmarks import (real_path: core_overhead's harness; quality_objective: search_quality's
# objective for workers) and scripts that build data, not figures
NOT_BENCHMARKS = {"report", "real_path", "quality_objective", "build_quality_table"}


def discover(folder: Path | None = None) -> tuple[list[Bench], list[str]]:
    """``(benchmarks present, known names absent)``: every ``*.py`` script in ``folder`` that runs as a
    program (``__main__``), known ones first in :data:`KNOWN` order."""
    scripts = {
        p.stem: p.read_text(errors="replace")
        for p in sorted((folder or HERE).glob("*.py"))
        if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_")
    }
    scripts = {name: text for name, text in scripts.items() if "__main__" in text}
    present: list[Bench] = []
    for bench in KNOWN:
        if bench.name in scripts:
            present.append(_resolved(bench, scripts[bench.name]))
    known = {b.name for b in KNOWN}
    for name, text in scripts.items():
        if name not in known:
            doc = text.split('"""', 2)[1].strip().splitlines()[0] if text.count('"""') >= 2 else name
            present.append(_resolved(Bench(name, doc.rstrip("."), (), None), text))
    absent = [b.name for b in KNOWN if b.name not in scripts]
    return present, absent


def _resolved(bench: Bench, text: str) -> Bench:
    if bench.quick is not None:
        return bench
    return Bench(bench.name, bench.what, bench.full, ("--quick",) if '"--quick"' in text else ())


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        load = f", load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min) before the run"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"- machine: {platform.node()}, {cpu}, {os.cpu_count()} CPUs{mem}{load}",
        f"- software: Python {platform.python_version()} on {platform.system()} {platform.release()}; "
        f"commit {commit or 'unknown'}",
    ]


def run(bench: Bench, quick: bool, timeout: float) -> tuple[str, list[str], int | None, float, str]:
    args = (bench.quick or ()) if quick else bench.full
    cmd = [sys.executable, str(HERE / f"{bench.name}.py"), *args]
    shown = " ".join(["python", f"benchmarks/{bench.name}.py", *args])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(f"== {shown}", flush=True)
    t0 = time.monotonic()
    code: int | None
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        out, code = proc.stdout, proc.returncode
        if code:
            out += f"\n[stderr, last lines]\n{_tail(proc.stderr)}"
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        out = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        code = None
    return shown, out.rstrip().splitlines(), code, time.monotonic() - t0, bench.what


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every benchmark's smoke settings")
    ap.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    ap.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark (default 3600)")
    ap.add_argument("--list", action="store_true", help="print the benchmarks found and exit")
    args = ap.parse_args(argv)
    benches, absent = discover()
    if args.list:
        for b in benches:
            print(f"{b.name}: {b.what}")
        for name in absent:
            print(f"{name}: (not in this checkout)")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - {b.name for b in benches})
    if unknown:
        found = ", ".join(b.name for b in benches)
        ap.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; found: {found}")
    chosen = [b for b in benches if not names or b.name in names]
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/report.py`"
        + (" in its quick mode (smoke settings: small sizes, few repeats)" if args.quick else "")
        + f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Rerun: "
        f"`python benchmarks/report.py{' --quick' if args.quick else ''}`.",
        "Figures from a shared machine move by 2x between runs: compare rows of the same run, read medians "
        "and ratios, and keep the machine next to any figure quoted.",
        "",
        *machine(),
    ]
    if absent and not names:
        lines.append(f"- not in this checkout, so not run: {', '.join(absent)}")
    failed = 0
    for bench in chosen:
        shown, out, code, wall, what = run(bench, args.quick, args.timeout)
        status = "ok" if code == 0 else ("timed out" if code is None else f"exit status {code}")
        failed += code != 0
        lines += ["", f"## {bench.name}", "", f"{what}.", "", f"`{shown}`: {wall:.0f} s, {status}", "", "```"]
        lines += out or ["(no output)"]
        lines += ["```"]
        print(f"   {status} in {wall:.0f} s", flush=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
