"""A lean pull consumer: pull requests sent by hand, replies handled in a callback.

nats-py's ``fetch()`` spends several event-loop turns per message and, while
idle, holds the first message of a long poll until the whole batch arrives.
Here each pull request has its own reply subscription (JetStream delivers a
message under its original subject, so only the subscription tells which
request it answers), so every message and every terminal status (404/408/409)
is accounted to its request: the worker always knows how many messages are
still owed and asks for exactly what its free slots can take.

A request is one of two kinds. An *ask* (``no_wait``) is answered at once with
what the queue holds, then a 404 if that was less than asked: it tells whether
the queue has jobs without holding a slot while it has none. A *watch* is a long
poll, for a queue found empty: it takes the queue's next job the moment it
comes. A watch can be called off (:meth:`Puller.cancel_watches`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg

from naq.transport.connection import Connection
from naq.transport.errors import map_error

log = logging.getLogger("naq.puller")

#: Status codes that end a pull request (503: no consumer leader, e.g. during an election).
_TERMINAL = {"404", "408", "409", "503"}
#: Status codes that say an ask found fewer messages than it asked for.
_SHORT = {"404", "408"}
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
#: How long stopping waits for the messages already on their way.
_STOP_WAIT = 2.0


@dataclass
class _Request:
    remaining: int
    expires_at: float
    #: An ask (answered at once) rather than a watch (a long poll).
    ask: bool = False
    sub: Any = None
    #: Whether the server sends idle heartbeats for it, and when it last said anything.
    heartbeats: bool = False
    heard_at: float = field(default_factory=time.monotonic)


class Puller:
    """Pulls messages of one durable consumer into ``deliver``.

    ``deliver(msg)`` is called synchronously from the subscription callback for
    every job message; ``on_change()`` when a request ends short (a final status,
    lost, reset), so the owner can ask for more, and ``on_filled()``, if given,
    when one was answered in full.
    """

    def __init__(
        self,
        connection: Connection,
        stream: str,
        consumer: str,
        deliver: Callable[[Msg], None],
        on_change: Callable[[], None],
        expires: float = 30.0,
        on_filled: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self._api_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._deliver = deliver
        self._on_change = on_change
        self._on_filled = on_filled
        #: How long a watch waits.
        self.expires = expires
        self._requests: dict[str, _Request] = {}
        self._counter = 0
        self._prefix = ""
        #: No new requests before this monotonic time (after the server refused one).
        self.cooldown_until = 0.0
        #: When the queue last came up short when asked (monotonic), while that is the
        #: latest word on it: None once asked again, or once a watch of it has ended.
        self.empty_at: float | None = None

    @property
    def outstanding(self) -> int:
        """Messages requested and not yet received."""
        return sum(r.remaining for r in self._requests.values())

    @property
    def asking(self) -> int:
        """Messages asked for and not yet received."""
        return sum(r.remaining for r in self._requests.values() if r.ask)

    @property
    def watching(self) -> int:
        """Messages the watches of this queue may still take."""
        return sum(r.remaining for r in self._requests.values() if not r.ask)

    async def start(self) -> None:
        """Get ready to pull (kept for symmetry with :meth:`stop`)."""
        self._prefix = self._connection.nc.new_inbox() + "."

    async def ask(self, batch: int) -> None:
        """Ask for up to ``batch`` messages the queue holds now (answered at once)."""
        if batch > 0:
            request = _Request(batch, time.monotonic() + _GRACE, ask=True)
            self.empty_at = None
            await self._send(request, {"no_wait": True})

    async def watch(self, batch: int, expires: float | None = None) -> None:
        """Wait up to ``expires`` seconds (default :attr:`expires`) for ``batch`` messages."""
        if batch <= 0:
            return
        expires = self.expires if expires is None else expires
        request = _Request(batch, time.monotonic() + expires + _GRACE)
        body: dict[str, Any] = {"expires": int(expires * 1e9)}
        if expires >= 2 * IDLE_HEARTBEAT:
            # The server wants the heartbeat well inside the expiry; short polls go without.
            body["idle_heartbeat"] = int(IDLE_HEARTBEAT * 1e9)
            request.heartbeats = True
        await self._send(request, body)

    async def kick(self) -> None:
        """Send a short watch for one message.

        A consumer resumed after a pause does not serve the requests already
        waiting until something new happens on it; a fresh request is that
        something, and the server serves the older requests first.
        """
        await self.watch(1, _KICK_EXPIRES)

    async def _send(self, request: _Request, body: dict[str, Any]) -> None:
        self._counter += 1
        token = str(self._counter)
        self._requests[token] = request
        body["batch"] = request.remaining
        connection = self._connection
        try:
            request.sub = await connection.subscribe_direct(
                self._prefix + token, functools.partial(self._on_msg, token)
            )
            await connection.nc.publish(
                self._api_subject, json.dumps(body).encode(), reply=self._prefix + token
            )
        except Exception as exc:
            self._end(token)
            raise map_error(exc, connection.settings) from exc

    def cancel_watches(self) -> None:
        """Call off every watch.

        Its subscription is drained rather than dropped: a message the server sent
        before it saw the watch go is still delivered, not left unacked until the
        ack wait runs out.
        """
        for token in [t for t, r in self._requests.items() if not r.ask]:
            self._end(token, drain=True)
            self.empty_at = None

    def _end(self, token: str, *, drain: bool = False) -> asyncio.Future[None] | None:
        """Forget a request and close its subscription: unsubscribed, once the server is
        done with the request; drained (what the server sent before it sees the
        unsubscribe still arrives), while it may still hold the request. The closing,
        already under way, is returned to be awaited if need be."""
        request = self._requests.pop(token, None)
        if request is None or request.sub is None:
            return None
        sub, request.sub = request.sub, None
        return asyncio.ensure_future(_close(sub.drain() if drain else sub.unsubscribe()))

    def reset(self) -> None:
        """Forget every request (after a reconnect the server has dropped them)."""
        for token in list(self._requests):
            self._end(token)
        self.empty_at = None
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
            # Presumed lost, it may yet be alive on the server (its heartbeats late).
            self._end(token, drain=True)
            self.empty_at = None
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
                    if not request.ask:
                        self.empty_at = None
                    if self._on_filled is not None:
                        self._on_filled()
            self._deliver(msg)
            return
        if status in _TERMINAL:
            self._end(token)
            if request is not None:
                if not request.ask:
                    self.empty_at = None
                elif status in _SHORT:
                    self.empty_at = time.monotonic()
            if status in _BACK_OFF:
                # e.g. max ack pending reached or a leader election: ask again a little later.
                self.cooldown_until = time.monotonic() + 0.5
                log.debug("pull request ended: %s", headers.get("Description") if headers else "")
            self._on_change()
        # 100 (idle heartbeat) and anything else: nothing to account.

    async def stop(self) -> None:
        """End every request; the server drops requests nobody listens to.

        The subscriptions are drained, and awaited up to :data:`_STOP_WAIT` seconds: a
        message the server sent before it saw them go reaches ``deliver`` (which hands
        it back) instead of waiting out its ack wait.
        """
        closing = [self._end(token, drain=True) for token in list(self._requests)]
        pending = [c for c in closing if c is not None]
        if pending:
            await asyncio.wait(pending, timeout=_STOP_WAIT)


async def _close(closing: Awaitable[Any]) -> None:
    """Await a subscription's unsubscribe or drain, which may fail with the connection."""
    try:
        await closing
    except Exception as exc:  # the connection may already be gone
        log.debug("unsubscribe: %r", exc)
