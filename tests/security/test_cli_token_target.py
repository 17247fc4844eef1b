"""Issue 8, item 6: the CLI must not send a token to a URL that a file in the current folder names.

``./.hyperhive/up.json`` is used only with its own ``./.hyperhive/token``, only when neither a URL nor a
token was given, only when both files are this user's and private (0600, as ``up`` writes them; a cloned
or unpacked folder's are not), the recorded pid is a live ``hyperhive`` process and the URL is loopback.
A recording HTTP server stands in for the attacker's endpoint; the CLI runs as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

USER_SECRET = "hh_the_users_own_secret"
FILE_SECRET = "hh_the_token_in_the_folder"


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization") or "")
        body = b'{"detail": "recorded"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def live_pids() -> Iterator[dict[str, int]]:
    """A live process whose command line names hyperhive, and one that does not."""
    sleep = "import time; time.sleep(120)"
    named = subprocess.Popen([sys.executable, "-c", sleep, "hyperhive", "up"])
    other = subprocess.Popen([sys.executable, "-c", sleep])
    yield {"hyperhive": named.pid, "other": other.pid}
    for p in (named, other):
        p.kill()
        p.wait()


def plant(folder: Path, url: str, pid: int, mode: int = 0o600) -> None:
    home = folder / ".hyperhive"
    home.mkdir(parents=True, exist_ok=True)
    for name, text in (("up.json", json.dumps({"url": url, "pid": pid})), ("token", FILE_SECRET + "\n")):
        (home / name).write_text(text)
        os.chmod(home / name, mode)


def whoami(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    return subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", "whoami"],
        cwd=folder, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_users_token_never_goes_to_a_url_read_from_the_folder(
    tmp_path: Path, recorder: str, live_pids: dict[str, int]
) -> None:
    plant(tmp_path, recorder, live_pids["hyperhive"])
    r = whoami(tmp_path, HYPERHIVE_TOKEN=USER_SECRET)
    assert "Traceback" not in r.stderr
    assert all(USER_SECRET not in seen for seen in Recorder.seen) and "recorded" not in r.stderr
    # control: with no token of the user's, a trusted up.json is used with its own token (and only it)
    r = whoami(tmp_path)
    assert Recorder.seen == [f"Bearer {FILE_SECRET}"] and "HTTP 401: recorded" in r.stderr


@pytest.mark.parametrize(
    "case", ["world-readable files", "dead pid", "not a hyperhive process", "remote url"]
)
def test_an_untrusted_up_file_is_ignored(
    case: str, tmp_path: Path, recorder: str, live_pids: dict[str, int]
) -> None:
    pid, mode, url = live_pids["hyperhive"], 0o600, recorder
    if case == "world-readable files":  # as a git clone or an unpacked archive leaves them
        mode = 0o644
    elif case == "dead pid":
        dead = subprocess.Popen([sys.executable, "-c", "pass", "hyperhive"])
        dead.wait()
        pid = dead.pid
    elif case == "not a hyperhive process":
        if not Path("/proc/self/cmdline").exists():
            pytest.skip("needs /proc")
        pid = live_pids["other"]
    else:
        url = "http://attacker.invalid:80"
    plant(tmp_path, url, pid, mode)
    r = whoami(tmp_path)
    assert Recorder.seen == [] and "attacker.invalid" not in r.stderr and "recorded" not in r.stderr
    assert r.returncode == 1 and "Traceback" not in r.stderr
