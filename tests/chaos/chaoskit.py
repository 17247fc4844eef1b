"""Processes for the chaos suite: ``hyperhive worker`` and ``hyperhive serve`` children started with
default signal dispositions (a pytest started from a non-interactive shell with ``&`` hands its children
SIGINT ignored; here every child gets the dispositions a terminal would give it), each in its own session
so a signal meant for the test runner does not reach them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# resets the dispositions and the signal mask, then becomes the real command (thread-safe, unlike preexec_fn)
_DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE,\n"
    "          signal.SIGXFSZ):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "signal.pthread_sigmask(signal.SIG_SETMASK, [])\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def default_signals(cmd: list[str], *, fsize: int | None = None) -> list[str]:
    """``cmd`` run with default signal dispositions and an empty signal mask, whatever the parent's;
    with ``fsize``, files it writes may not grow past ``fsize`` bytes (soft limit, SIGXFSZ ignored, so a
    write past it fails with EFBIG as on a full disk; the hard limit stays, so ``prlimit`` can lift it)."""
    if fsize is None:
        return [sys.executable, "-c", _DEFAULT_SIGNALS, *cmd]
    limit = (
        "import resource\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, hard))\n"
    )
    script = _DEFAULT_SIGNALS.replace("os.execv", limit + "os.execv")
    return [sys.executable, "-c", script, *cmd]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def spawn(args: list[str], log: Path, *, fsize: int | None = None, **popen: Any) -> subprocess.Popen[bytes]:
    """``python -m hyperhive.cli ARGS`` with default signals, in its own session, output added to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            default_signals([sys.executable, "-m", "hyperhive.cli", *args], fsize=fsize),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd=str(log.parent),
            start_new_session=True,
            **popen,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready in {timeout}s")


def kill(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """``hyperhive serve --no-auth`` on a fixed port over one store; killable and restartable."""

    def __init__(self, store_url: str, folder: Path) -> None:
        self.store_url, self.folder = store_url, folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        args = [
            "serve",
            "--no-auth",
            "--store",
            self.store_url,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.proc = spawn(args, self.folder / "serve.log")
        self.starts += 1
        wait_ready(self.url, self.proc)

    def kill(self) -> None:
        kill(self.proc)


class WorkerProc:
    """One ``hyperhive worker`` child with short leases; remembers the pids it ran as."""

    def __init__(
        self, store_url: str, folder: Path, name: str, *extra: str, fsize: int | None = None
    ) -> None:
        self.store_url, self.folder, self.name, self.extra = store_url, folder, name, extra
        self.fsize = fsize
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    def start(self) -> None:
        args = [
            "worker", "--store", self.store_url, "--allow-objective", "chaos_objectives",
            "--lease-seconds", "2", "--heartbeat-seconds", "0.5", "--log-level", "WARNING", *self.extra,
        ]  # fmt: skip
        self.proc = spawn(args, self.folder / f"{self.name}.log", fsize=self.fsize)
        self.pids.append(self.proc.pid)

    def log(self) -> str:
        return (self.folder / f"{self.name}.log").read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# ------------------------------------------------------------------ MongoDB, where a server is configured
MONGO_URL = os.environ.get("HYPERHIVE_TEST_MONGO_URL", "")
needs_mongo = __import__("pytest").mark.skipif(
    not MONGO_URL, reason="set HYPERHIVE_TEST_MONGO_URL to a MongoDB server (none can run on this machine)"
)


def mongo_url(database: str, *, via: tuple[str, int] | None = None) -> str:
    """``HYPERHIVE_TEST_MONGO_URL`` naming ``database`` (and, with ``via``, reaching the server through
    that host and port instead, as one direct connection: a proxy in between)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(MONGO_URL)
    netloc = parts.netloc
    query = dict(parse_qsl(parts.query))
    if via is not None:
        creds = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        netloc = f"{creds}{via[0]}:{via[1]}"
        query.pop("replicaSet", None)
        query["directConnection"] = "true"
    query.setdefault("serverSelectionTimeoutMS", "3000")
    return urlunsplit((parts.scheme, netloc, f"/{database}", urlencode(query), ""))


def mongo_server_address() -> tuple[str, int]:
    """The first host of ``HYPERHIVE_TEST_MONGO_URL``."""
    from urllib.parse import urlsplit

    host = urlsplit(MONGO_URL).netloc.rsplit("@", 1)[-1].split(",")[0]
    name, _, port = host.partition(":")
    return name, int(port or 27017)


def backend_store(backend: str, tmp_path: Path) -> tuple[Any, str, Any]:
    """``(store, url the children open, cleanup)``: a SQLite file in ``tmp_path``, or a fresh database on
    the ``HYPERHIVE_TEST_MONGO_URL`` server (dropped by ``cleanup``)."""
    import uuid

    from hyperhive.store import SQLiteStore, open_store

    if backend == "sqlite":
        db = tmp_path / "store.db"
        store = SQLiteStore(db)
        return store, f"sqlite:///{db}", store.close

    name = f"hyperhive_chaos_{uuid.uuid4().hex[:10]}"
    url = mongo_url(name)
    mstore = open_store(url)

    def cleanup() -> None:
        mstore.client.drop_database(name)  # type: ignore[attr-defined]
        mstore.close()

    return mstore, url, cleanup
