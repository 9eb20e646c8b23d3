"""Pipelined JetStream publishes: many in flight, each ack matched to its future.

Every publish that wants an ack gets a reply subject of its own under one inbox
subscription (a direct one, :mod:`naq.transport.direct`), and its frame goes out through
:class:`~naq.transport.frames.Framer`: no coroutine, no timer and no task per publish.
One sweep a second fails the publishes whose ack is past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.aio.client as nats_client
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from naq.errors import NaqConnectionError, NaqException
from naq.settings import Settings
from naq.transport.direct import is_direct, subscribe_direct
from naq.transport.errors import PublishError, describe_servers, map_error
from naq.transport.frames import Framer

log = logging.getLogger("naq.connection")

#: How long a publish waits for its ack before it fails, and how often that is checked.
ACK_DEADLINE = 30.0
ACK_SWEEP_INTERVAL = 1.0


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: dict[str, Any] | None = None


_puback_decoder = msgspec.json.Decoder(_PubAck)


@dataclass(frozen=True)
class PubAck:
    """JetStream's answer to a publish."""

    stream: str
    seq: int
    duplicate: bool


async def _all_done(futures: list[asyncio.Future[PubAck]]) -> None:
    """Wait until every future is done, waking once (not once per future, as awaiting
    each in turn would, for a thousand acks arriving one by one)."""
    remaining = sum(1 for future in futures if not future.done())
    if not remaining:
        return
    if len(futures) == 1:
        with contextlib.suppress(Exception):  # the caller reads the outcome off the future
            await futures[0]
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def one_done(_: asyncio.Future[PubAck]) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    for future in futures:
        if not future.done():
            future.add_done_callback(one_done)
    await waiter


def forget(future: asyncio.Future[Any]) -> None:
    """Let a pipelined publish complete unobserved; a failure is logged, not raised."""

    def done(f: asyncio.Future[Any]) -> None:
        if not f.cancelled() and f.exception() is not None:
            log.warning("background publish failed: %s", f.exception())

    future.add_done_callback(done)


class Publisher:
    """The publishes of one nats-py client, pipelined, with naq's errors.

    :class:`~naq.transport.connection.Connection` offers its methods as its own.
    """

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self._nc = nc
        self._settings = settings
        self._servers = describe_servers(settings)
        #: Publishes awaiting their ack: token -> (future, monotonic deadline), oldest first.
        self._acks: dict[str, tuple[asyncio.Future[PubAck], float]] = {}
        self._ack_sweeper: asyncio.Task[None] | None = None
        self._ack_prefix = ""
        self._ack_counter = 0
        self._framer = Framer(nc, plain=settings.plain_client)
        #: Whether publishes go out as naq's frames and replies come in through direct
        #: subscriptions (known once started; off under ``plain_client``).
        self.fast_paths = False

    async def start(self) -> None:
        """Subscribe to the acks' inbox and start the deadline sweep."""
        self._ack_prefix = self._nc.new_inbox() + "."
        sub = await subscribe_direct(
            self._nc, self._ack_prefix + "*", self._on_ack, plain=self._settings.plain_client
        )
        self.fast_paths = self._framer.lean and is_direct(sub)
        if not self._settings.plain_client and not self.fast_paths:
            log.warning(
                "nats-py %s lacks the client internals naq's fast paths use; "
                "publishing and receiving through its public API (slower)",
                getattr(nats_client, "__version__", "?"),
            )
        self._ack_sweeper = asyncio.ensure_future(self._sweep_acks())

    def stop(self) -> None:
        """Stop the deadline sweep (the connection is closing)."""
        if self._ack_sweeper is not None:
            self._ack_sweeper.cancel()

    async def _sweep_acks(self) -> None:
        """Fail publishes whose ack is past its deadline (e.g. lost with a connection).

        One sweep a second for every publish, rather than a timer per wait: a timer per
        job is a good part of what a short job costs.
        """
        while True:
            await asyncio.sleep(ACK_SWEEP_INTERVAL)
            now = time.monotonic()
            # Every publish gets the same allowance, so the oldest entries expire first.
            while self._acks:
                token, (future, deadline) = next(iter(self._acks.items()))
                if deadline > now:
                    break
                del self._acks[token]
                if not future.done():
                    future.set_exception(self._no_ack(ACK_DEADLINE))

    def _no_ack(self, timeout: float) -> NaqConnectionError:
        return NaqConnectionError(
            f"NATS at {self._servers} did not acknowledge a publish within {timeout:g}s"
        )

    def _on_ack(self, msg: Msg) -> None:
        entry = self._acks.pop(msg.subject[len(self._ack_prefix) :], None)
        if entry is None or entry[0].done():
            return
        future = entry[0]
        if not msg.data:
            # A status message (e.g. 503 no responders) instead of an ack.
            status = (msg.headers or {}).get("Status", "")
            future.set_exception(
                PublishError(f"no stream answered the publish (status {status})", None, None)
            )
            return
        try:
            ack = _puback_decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(PublishError(f"bad publish ack: {exc}", None, None))
            return
        if ack.error:
            future.set_exception(
                PublishError(
                    str(ack.error.get("description", ack.error)),
                    ack.error.get("code"),
                    ack.error.get("err_code"),
                )
            )
        else:
            future.set_result(PubAck(ack.stream or "", ack.seq or 0, ack.duplicate))

    def publish_nowait(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[PubAck]:
        """Publish to JetStream and return a future of its ack without waiting.

        Many publishes in a row travel together (pipelined); await the futures
        (e.g. with :meth:`wait_acks`) to learn each outcome.

        Raises:
            NaqException: the client refuses to publish (closed, buffer full, too large).
        """
        self._ack_counter += 1
        token = str(self._ack_counter)
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._acks[token] = (future, time.monotonic() + ACK_DEADLINE)
        try:
            scheduled = self._framer.send(
                subject, payload, reply=self._ack_prefix + token, headers=headers
            )
        except Exception as exc:
            self._acks.pop(token, None)
            raise map_error(exc, self._settings) from exc
        if scheduled is not None:
            scheduled.add_done_callback(functools.partial(self._publish_failed, token))
        return future

    def _publish_failed(self, token: str, scheduled: asyncio.Future[None]) -> None:
        if scheduled.cancelled() or scheduled.exception() is None:
            return
        entry = self._acks.pop(token, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(map_error(scheduled.exception(), self._settings))  # type: ignore[arg-type]

    def post(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        """Publish to JetStream without asking for an ack (the stream stores it all the same).

        For records whose loss is repaired elsewhere (a job's status, next to its
        result): no ack to send back and handle halves the messages such a write costs.
        Order with this connection's other publishes is kept.

        Raises:
            NaqException: the client refuses to publish (closed, buffer full, too large).
        """
        try:
            scheduled = self._framer.send(subject, payload, headers=headers)
        except Exception as exc:
            raise map_error(exc, self._settings) from exc
        if scheduled is not None:
            forget(scheduled)

    def ack(self, msg: Msg) -> None:
        """Acknowledge a JetStream message (as ``msg.ack()``, without a coroutine)."""
        if not msg.reply:
            raise NaqException("the message has no reply subject to acknowledge")
        self.post(msg.reply, b"")
        msg._ackd = True

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> PubAck:
        """Publish to JetStream and wait for the ack.

        Raises:
            PublishError: JetStream refused the message.
            NaqConnectionError: no ack within ``timeout``.
        """
        future = self.publish_nowait(subject, payload, headers)
        return await self.wait_ack(future, timeout)

    async def wait_ack(self, future: asyncio.Future[PubAck], timeout: float = 10.0) -> PubAck:
        """Wait for one publish ack.

        Raises:
            PublishError: JetStream refused the message.
            NaqConnectionError: no ack within ``timeout``.
        """
        (outcome,) = await self.wait_acks([future], timeout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def wait_acks(
        self, futures: list[asyncio.Future[PubAck]], timeout: float = ACK_DEADLINE
    ) -> list[PubAck | BaseException]:
        """Wait for many acks; each item is the ack or the (naq) error for that publish.

        Every publish fails by itself once it has waited ``ACK_DEADLINE``; a shorter
        ``timeout`` takes one timer for the lot, never a task or a future per publish
        (this is on every job's path).
        """
        if not futures:
            return []
        timer = None
        if timeout < ACK_DEADLINE:

            def expire() -> None:
                # Their entries go with the sweep at ACK_DEADLINE; a late ack finds them done.
                for future in futures:
                    if not future.done():
                        future.set_exception(self._no_ack(timeout))

            timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            await _all_done(futures)
        finally:
            if timer is not None:
                timer.cancel()
        return [
            future.exception() or future.result()  # type: ignore[misc]
            for future in futures
        ]
