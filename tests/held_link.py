"""A TCP relay between a client and a nats-server that can hold back what the server
sends: the network's delay, made to order. While held, the server's bytes wait in the
relay; the client's still go through (and the relay can say when the client has sent a
given protocol verb)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse


class HeldLink:
    """Relays one client connection at a time to the server at ``upstream``."""

    def __init__(self, upstream: str) -> None:
        parsed = urlparse(upstream)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 4222
        self._open = asyncio.Event()
        self._open.set()
        self._sent = bytearray()
        self._sent_changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    def hold(self) -> None:
        """Keep what the server sends from now on in the relay."""
        self._open.clear()

    def release(self) -> None:
        """Pass on what was held, and everything after it."""
        self._open.set()

    async def client_sent(self, verb: bytes, timeout: float = 5.0) -> None:
        """Wait until the client has sent ``verb`` (e.g. ``b"UNSUB"``) since the last call."""

        async def seen() -> None:
            while verb not in self._sent:
                self._sent_changed.clear()
                await self._sent_changed.wait()

        await asyncio.wait_for(seen(), timeout)
        self._sent.clear()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, downstream: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                if downstream:
                    await self._open.wait()
                else:
                    self._sent += chunk
                    self._sent_changed.set()
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self._host, self._port)
        for task in (
            asyncio.ensure_future(self._pump(client_r, server_w, downstream=False)),
            asyncio.ensure_future(self._pump(server_r, client_w, downstream=True)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> HeldLink:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"nats://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
