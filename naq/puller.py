"""A lean pull consumer: pull requests sent by hand, replies handled in a callback.

nats-py's ``fetch()`` spends several event-loop turns per message and, while
idle, holds the first message of a long poll until the whole batch arrives.
Here each pull request has its own reply subscription (JetStream delivers a
message under its original subject, so only the subscription tells which
request it answers), so every message and every terminal status (404/408/409)
is accounted to its request: the worker always knows how many messages are
still owed and asks for exactly what its free slots can take.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from naq.connection import Connection, Msg

log = logging.getLogger("naq.puller")

#: Status codes that end a pull request (503: no consumer leader, e.g. during an election).
_TERMINAL = {"404", "408", "409", "503"}
#: Status codes after which the server is asked again only after a pause.
_BACK_OFF = {"409", "503"}
#: The server's heartbeat on a waiting request; silence past _SILENCE heartbeats means the
#: request died with the node that held it (a cluster node lost mid-poll).
IDLE_HEARTBEAT = 1.0
_SILENCE = 3
#: How long a kick request waits.
_KICK_EXPIRES = 1.0
#: Extra seconds after a request's expiry before it is presumed lost.
_GRACE = 5.0


@dataclass
class _Request:
    remaining: int
    expires_at: float
    sub: Any = None
    #: Whether the server sends idle heartbeats for it, and when it last said anything.
    heartbeats: bool = False
    heard_at: float = field(default_factory=time.monotonic)


class Puller:
    """Pulls messages of one durable consumer into ``deliver``.

    ``deliver(msg)`` is called synchronously from the subscription callback for
    every job message; ``on_change()`` when a request ends, so the owner can
    ask for more.
    """

    def __init__(
        self,
        connection: Connection,
        stream: str,
        consumer: str,
        deliver: Callable[[Msg], None],
        on_change: Callable[[], None],
        expires: float = 30.0,
    ) -> None:
        self._connection = connection
        self._api_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._deliver = deliver
        self._on_change = on_change
        self.expires = expires
        self._requests: dict[str, _Request] = {}
        self._counter = 0
        self._prefix = ""
        #: No new requests before this monotonic time (after the server refused one).
        self.cooldown_until = 0.0

    @property
    def outstanding(self) -> int:
        """Messages requested and not yet received."""
        return sum(r.remaining for r in self._requests.values())

    async def start(self) -> None:
        """Get ready to pull (kept for symmetry with :meth:`stop`)."""
        self._prefix = self._connection.nc.new_inbox() + "."

    async def request(self, batch: int) -> None:
        """Ask the server for up to ``batch`` more messages (a long poll of ``expires`` s)."""
        if batch <= 0:
            return
        self._counter += 1
        token = str(self._counter)
        request = _Request(batch, time.monotonic() + self.expires + _GRACE)
        self._requests[token] = request
        nc = self._connection.nc
        body = {"batch": batch, "expires": int(self.expires * 1e9)}
        if self.expires >= 2 * IDLE_HEARTBEAT:
            # The server wants the heartbeat well inside the expiry; short polls go without.
            body["idle_heartbeat"] = int(IDLE_HEARTBEAT * 1e9)
            request.heartbeats = True
        try:
            request.sub = await self._connection.subscribe_direct(
                self._prefix + token, functools.partial(self._on_msg, token)
            )
            await nc.publish(
                self._api_subject, json.dumps(body).encode(), reply=self._prefix + token
            )
        except Exception:
            self._end(token)
            raise

    async def kick(self) -> None:
        """Send a short request for one message.

        A consumer resumed after a pause does not serve the requests already
        waiting until something new happens on it; a fresh request is that
        something, and the server serves the older requests first.
        """
        self._counter += 1
        token = str(self._counter)
        request = _Request(1, time.monotonic() + _KICK_EXPIRES + _GRACE)
        self._requests[token] = request
        nc = self._connection.nc
        try:
            request.sub = await self._connection.subscribe_direct(
                self._prefix + token, functools.partial(self._on_msg, token)
            )
            await nc.publish(
                self._api_subject,
                json.dumps({"batch": 1, "expires": int(_KICK_EXPIRES * 1e9)}).encode(),
                reply=self._prefix + token,
            )
        except Exception:
            self._end(token)
            raise

    def _end(self, token: str) -> None:
        request = self._requests.pop(token, None)
        if request is not None and request.sub is not None:
            sub, request.sub = request.sub, None
            asyncio.ensure_future(_unsubscribe(sub))

    def reset(self) -> None:
        """Forget every request (after a reconnect the server has dropped them)."""
        for token in list(self._requests):
            self._end(token)
        self._on_change()

    def expire_lost(self) -> None:
        """Drop requests past their expiry, or whose heartbeats stopped, with no final status."""
        now = time.monotonic()
        silent = now - _SILENCE * IDLE_HEARTBEAT
        lost = [
            token
            for token, request in self._requests.items()
            if request.expires_at < now or (request.heartbeats and request.heard_at < silent)
        ]
        for token in lost:
            self._end(token)
        if lost:
            self._on_change()

    def _on_msg(self, token: str, msg: Msg) -> None:
        request = self._requests.get(token)
        if request is not None:
            request.heard_at = time.monotonic()
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status is None:
            if request is not None:
                request.remaining -= 1
                if request.remaining <= 0:
                    self._end(token)
            self._deliver(msg)
            return
        if status in _TERMINAL:
            self._end(token)
            if status in _BACK_OFF:
                # e.g. max ack pending reached or a leader election: ask again a little later.
                self.cooldown_until = time.monotonic() + 0.5
                log.debug("pull request ended: %s", headers.get("Description") if headers else "")
            self._on_change()
        # 100 (idle heartbeat) and anything else: nothing to account.

    async def stop(self) -> None:
        """End every request; the server drops requests nobody listens to."""
        for token in list(self._requests):
            self._end(token)


async def _unsubscribe(sub: Any) -> None:
    try:
        await sub.unsubscribe()
    except Exception as exc:  # the connection may already be gone
        log.debug("unsubscribe: %r", exc)
