"""The embedded deployment (``hyperhive up`` / ``hyperhive run``): one SQLite store under the home
folder (``./.hyperhive/``), the API on 127.0.0.1 in this process, and local worker processes.

- The API runs in a background thread of this process (uvicorn, on a socket bound here: the requested
  port, or a free one when the default port is taken).
- Workers are ``python -m hyperhive.cli worker --cpu --exit-with-parent PID`` (or one worker
  with ``--gpus``; ``run`` adds ``--search ID``) in their own session, so a terminal's Ctrl-C reaches
  only this process, and they exit when this process dies, even by SIGKILL; :meth:`Embedded.stop` sends them
  SIGTERM (they hand their trials back), waits, then kills what is left. Their output goes to
  ``<home>/logs/worker-N.log``; the server's log to ``<home>/logs/server.log``.
- An admin token named ``local`` is kept in ``<home>/token`` (0600) and reused while it is valid;
  ``<home>/up.json`` records the URL while the server runs, so that client commands run from the same
  folder find both (see :mod:`hyperhive.service.cli_common`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hyperhive.errors import HyperhiveError
from hyperhive.private_files import open_private_append, private_dir
from hyperhive.service.cli_common import TOKEN_FILE, UP_FILE, pid_alive, read_up_file, write_private
from hyperhive.settings import LAUNCHER_ENV, Settings
from hyperhive.store import open_store, sqlite_path
from hyperhive.store.base import Store

log = logging.getLogger("hyperhive.embedded")

LOCAL_ADMIN = "local"


class EmbeddedError(HyperhiveError):
    """The embedded deployment could not start (port taken, server failed)."""


def absolute_store_url(url: str) -> str:
    """A SQLite URL with an absolute path (workers may run from elsewhere); other URLs unchanged."""
    path = sqlite_path(url)
    if path is None:
        return url
    return f"sqlite:///{Path(path).resolve()}"


def bind_socket(host: str, port: int, *, fallback: bool) -> socket.socket:
    """A listening-ready socket on ``host:port``; when the port is taken and ``fallback``, a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not fallback:
            sock.close()
            raise EmbeddedError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
            ) from None
        sock.bind((host, 0))
    sock.set_inheritable(False)
    return sock


def ensure_admin_token(store: Store, home: Path) -> str:
    """The secret in ``<home>/token`` if it is still a live admin token of ``store``, else a new admin
    token named ``local`` written there."""
    path = home / TOKEN_FILE
    with contextlib.suppress(OSError):
        secret = path.read_text().strip()
        info = store.authenticate(secret) if secret else None
        if info is not None and info.admin:
            return secret
    _, secret = store.create_token(LOCAL_ADMIN, admin=True)
    write_private(path, secret + "\n")
    return secret


@dataclass
class WorkerProcess:
    index: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    reported_exit: bool = False


@dataclass
class Embedded:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent). ``port=None``: ``settings.port``,
    or a free port when that one is taken."""

    settings: Settings
    workers: int = 1
    port: int | None = None
    gpus: str | None = None
    worker_args: list[str] = field(default_factory=list)
    stop_timeout: float = 30.0
    allow_objective: list[str] = field(default_factory=list)
    launcher: str = "up"
    search_id: str | None = None
    defer_workers: bool = False

    url: str = ""
    token: str = ""
    store: Store | None = None
    processes: list[WorkerProcess] = field(default_factory=list)
    _server: object | None = None
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def store_url(self) -> str:
        return absolute_store_url(self.settings.store)

    def start(self) -> None:
        """Open the store, make sure of the admin token, start the API and the workers."""
        import uvicorn

        from hyperhive.service.app import create_app

        private_dir(self.home / "logs")  # and the home folder: 0700 when created here
        running = read_up_file(self.home)
        if running is not None and pid_alive(running.get("pid")):
            raise EmbeddedError(
                f"hyperhive up already runs from {self.home} (pid {running['pid']}, {running['url']}); "
                "stop it first or use another --home"
            )
        host = "127.0.0.1"
        sock = bind_socket(
            host, self.port if self.port is not None else self.settings.port, fallback=self.port is None
        )
        self._sock = sock
        port = sock.getsockname()[1]
        self.url = f"http://{host}:{port}"
        try:
            self.store = open_store(self.store_url)
            self.token = ensure_admin_token(self.store, self.home)
            settings = self.settings.model_copy(update={"host": host, "port": port, "store": self.store_url})
            app = create_app(settings, self.store)
            config = uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
            )
            server = uvicorn.Server(config)
            self._server = server
            self._thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True
            )
            self._thread.start()
            deadline = time.monotonic() + 30
            while not server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"the API server did not start; see {self.home / 'logs' / 'server.log'}"
                    )
                time.sleep(0.02)
            write_private(
                self.home / UP_FILE,
                json.dumps({"url": self.url, "pid": os.getpid(), "store": self.store_url}),
            )
            if not self.defer_workers:
                self.start_workers()
        except BaseException:
            self.stop()
            raise

    def worker_command(self) -> list[str]:
        # the store URL goes in the environment (HYPERHIVE_STORE), not argv, which every local user can read
        cmd = [sys.executable, "-m", "hyperhive.cli", "worker"]
        cmd += ["--gpus", self.gpus] if self.gpus else ["--cpu"]
        cmd += ["--exit-with-parent", str(os.getpid())]
        if self.search_id is not None:
            cmd += ["--search", self.search_id]
        for prefix in self.allow_objective:
            cmd += ["--allow-objective", prefix]
        return cmd + list(self.worker_args)

    def worker_env(self) -> dict[str, str]:
        """This process's environment, the store URL (not in argv) and which command started the
        workers (for their hints)."""
        return {**os.environ, "HYPERHIVE_STORE": self.store_url, LAUNCHER_ENV: self.launcher}

    def start_workers(self, search_id: str | None = None) -> None:
        """Start the workers (``search_id``: they claim that search's trials only). Each exits when this
        process dies, even by SIGKILL (``--exit-with-parent``)."""
        if search_id is not None:
            self.search_id = search_id
        n = 1 if self.gpus else self.workers
        for i in range(n):
            log_path = self.home / "logs" / f"worker-{i}.log"
            out = open_private_append(log_path)
            self._logs.append(out)
            proc = subprocess.Popen(
                self.worker_command(),
                env=self.worker_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.processes.append(WorkerProcess(i, proc, log_path))

    def exited_workers(self) -> list[WorkerProcess]:
        """Workers that exited since the last call (each reported once)."""
        out = []
        for w in self.processes:
            if not w.reported_exit and w.proc.poll() is not None:
                w.reported_exit = True
                out.append(w)
        return out

    def stop(self) -> None:
        """SIGTERM the workers (they hand their trials back), wait up to ``stop_timeout``, kill the rest;
        stop the API; close the store."""
        for w in self.processes:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for w in self.processes:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in %.0fs; killing it", w.index, self.stop_timeout)
                w.proc.kill()
                w.proc.wait()
        for f in self._logs:
            f.close()
        self._logs.clear()
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError, ValueError):
            up = self.home / UP_FILE
            if up.exists() and json.loads(up.read_text()).get("pid") == os.getpid():
                up.unlink()
        if self.store is not None:
            self.store.close()
            self.store = None
