"""A loopback TCP proxy that can cut the line: ``127.0.0.1:<port>`` forwards to ``target``; ``drop(s)``
aborts every open connection (a reset, as a dead network or a restarted server gives) and, for ``s``
seconds, resets each new one as soon as it is accepted. Put it between workers (or the API) and a store
server to test what they do when the store is unreachable, and that they come back on their own.

Runs an asyncio loop in a daemon thread; usable as a context manager."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Any


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        """Connections accepted and forwarded."""
        self.refused = 0
        """Connections reset while the line was cut."""
        self._down_until = 0.0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpproxy", daemon=True)

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> TcpProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = fut.result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def drop(self, seconds: float) -> None:
        """Reset every open connection now, and every new one for ``seconds``."""
        self._down_until = time.monotonic() + seconds
        asyncio.run_coroutine_threadsafe(self._abort_all(), self._loop).result(10)

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            await self._abort_all()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop's side
    async def _abort_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._open.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._open.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            if not writer.transport.is_closing():
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    writer.transport.abort()

    def __repr__(self) -> str:
        info: dict[str, Any] = {"port": self.port, "target": self.target, "down": self.down}
        return f"TcpProxy({info})"
