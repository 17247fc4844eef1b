"""The loopback proxy the MongoDB outage test puts between workers and the server, tested here
against a local HTTP server: it forwards, cuts every connection (open and new) while dropped, and
forwards again afterwards, with clients recovering on their own by reconnecting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from tcpproxy import TcpProxy


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a dropped line must break connections already open

    def do_GET(self) -> None:
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_proxy_forwards_drops_everything_for_a_while_then_forwards_again(upstream: int) -> None:
    with (
        TcpProxy("127.0.0.1", upstream) as proxy,
        httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}", timeout=5) as client,
    ):
        assert client.get("/a").text == "/a"
        assert client.get("/b").text == "/b"
        assert proxy.connections == 1, "one keep-alive connection carried both"
        proxy.drop(1.0)
        assert proxy.down
        # the open connection was reset, and new ones are reset while the line is down
        with pytest.raises(httpx.TransportError):
            client.get("/c")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{proxy.port}/d", timeout=5)
        assert proxy.refused >= 1
        deadline = time.monotonic() + 10
        while proxy.down:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/e").text == "/e", "the client reconnects once the line is back"
        assert proxy.connections >= 2


def test_a_stopped_proxy_refuses_connections(upstream: int) -> None:
    proxy = TcpProxy("127.0.0.1", upstream).start()
    assert httpx.get(f"http://127.0.0.1:{proxy.port}/x", timeout=5).text == "/x"
    proxy.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{proxy.port}/x", timeout=2)
