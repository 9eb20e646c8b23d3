"""NATS publish frames built by naq, for the publishes on every job's path.

nats-py encodes a message's headers afresh on every publish, checking each key
with a regular expression; on a worker that is a fifth of the time a job costs.
naq's own headers are few and known (a TTL, an expected sequence, a message
id), so :class:`Framer` encodes each header set once, caches it, and hands the
finished frame to the client's outgoing buffer, without a coroutine per publish.
The client's own rules for a publish (closed, draining, the reconnect buffer, the
server's maximum payload) are kept as they are in ``Client.publish``.

A client without the internals this relies on, or a :class:`Framer` told to be plain
(``NAQ_PLAIN_CLIENT=1``), gets ``publish`` calls scheduled in order: same messages,
nats-py's speed. ``pyproject.toml`` bounds nats-py to the releases this was checked on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
from nats.aio.client import Client

#: How many distinct header sets are kept encoded (they are few: TTLs and fixed flags).
MAX_CACHED_HEADERS = 256
#: Client attributes the lean path needs; a nats-py without them gets ``publish``.
_CLIENT_INTERNALS = (
    "_status",
    "_pending",
    "_flush_pending",
    "_flush_queue",
    "_flusher_task",
    "_pending_data_size",
    "_max_pending_size",
    "_max_payload",
    "stats",
)
#: nats-py's status value of a connected client.
CONNECTED = Client.CONNECTED
#: Header names whose values are different on every message (not worth caching).
_UNIQUE_HEADERS = frozenset({"Nats-Msg-Id", "Naq-Signature"})


def header_block(headers: dict[str, str]) -> bytes:
    """The encoded header section of a message: ``NATS/1.0``, one line per header, a blank line.

    Raises:
        ValueError: a name or value would break the frame (a line break, or a colon in a name).
    """
    lines = ["NATS/1.0\r\n"]
    for name, value in headers.items():
        if not name or ":" in name or any(c in name for c in " \r\n"):
            raise ValueError(f"bad header name {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"bad value {value!r} for header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


def _has_internals(client: Any) -> bool:
    """Whether ``client`` has every internal the lean publish path writes to."""
    return all(hasattr(client, name) for name in _CLIENT_INTERNALS)


class Framer:
    """Publishes on one nats-py client with naq's cached header encodings.

    ``plain``: always go through ``Client.publish`` (the lean path is off).
    """

    def __init__(self, client: Any, plain: bool = False) -> None:
        self.client = client
        #: Whether publishes take the lean path.
        self.lean = not plain and _has_internals(client)
        self._blocks: dict[tuple[tuple[str, str], ...], bytes] = {}

    def _block(self, headers: dict[str, str]) -> bytes:
        if _UNIQUE_HEADERS.intersection(headers):
            return header_block(headers)
        key = tuple(headers.items())
        block = self._blocks.get(key)
        if block is None:
            if len(self._blocks) >= MAX_CACHED_HEADERS:
                self._blocks.clear()
            block = self._blocks[key] = header_block(headers)
        return block

    def send(
        self, subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> asyncio.Future[None] | None:
        """Queue a publish at once, in order with every other (subjects are naq's own).

        No coroutine per publish: the frame goes into the client's outgoing buffer and
        its flusher is woken, as ``Client.publish`` does. Returns None then; on a client
        without the lean path, the future of a ``publish`` scheduled in order.

        Raises:
            nats.errors.Error: the client refuses to publish (closed, draining, buffer
                full while reconnecting, payload too large), as ``Client.publish`` would.
        """
        client = self.client
        if not self.lean:
            return asyncio.ensure_future(
                client.publish(subject, payload, reply=reply, headers=headers)
            )
        size = len(payload)
        # Connected is the common case: one comparison instead of three properties.
        connected = client._status == CONNECTED
        if not connected:
            if client.is_closed:
                raise nats.errors.ConnectionClosedError
            if client.is_draining_pubs:
                raise nats.errors.ConnectionDrainingError
            connected = client.is_connected
            if not connected and (
                client._max_pending_size <= 0
                or size + client._pending_data_size > client._max_pending_size
            ):
                raise nats.errors.OutboundBufferLimitError
        if size > client._max_payload:
            raise nats.errors.MaxPayloadError
        if headers:
            block = self._block(headers)
            head = f"HPUB {subject} {reply} {len(block)} {len(block) + size}\r\n".encode()
            frame = head + block + payload + b"\r\n"
        else:
            frame = f"PUB {subject} {reply} {size}\r\n".encode() + payload + b"\r\n"
        client.stats["out_msgs"] += 1
        client.stats["out_bytes"] += size
        client._pending.append(frame)
        client._pending_data_size += len(frame)
        if connected:  # otherwise kept in the buffer: sent on reconnecting
            self._wake_flusher()
        return None

    def _wake_flusher(self) -> None:
        client = self.client
        flusher = client._flusher_task
        if flusher is None or flusher.done():
            # No flusher (being replaced): let the client write the buffer itself.
            asyncio.ensure_future(client._flush_pending())
            return
        queue = client._flush_queue
        if queue is not None and queue.empty():
            # The flusher writes the whole buffer for one wake-up; one is enough.
            queue.put_nowait(asyncio.get_running_loop().create_future())
