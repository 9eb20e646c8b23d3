"""Reading streams through ordered consumers: one-pass reads, tails, live follows and
bucket mirrors, with naq's errors.

An ordered consumer is the server's cheapest way to read a stream in order: ephemeral,
flow-controlled, recreated by the client after a gap. How many messages a one-pass read
expects is taken from the consumer itself (delivered so far + still pending) right after
it starts, so a read never stops early on a "caught up" signal that raced the first
messages, nor waits for a message that isn't there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from naq.settings import Settings
from naq.transport.buckets import GONE, KVEntry
from naq.transport.errors import Mapped
from naq.transport.streams import Streams

#: A stream's tail is first read over this many sequences (or the page wanted times the
#: growth), then over windows growing by the growth until it holds enough.
TAIL_MIN = 256
TAIL_GROWTH = 4
#: Seconds a one-pass read waits for each next message it expects.
NEXT_TIMEOUT = 10.0
#: Seconds a mirror waits to receive what its bucket holds.
CATCH_UP_TIMEOUT = 30.0


def delivered_so_far(info: Any) -> int:
    """Messages a consumer has delivered, from its info."""
    return int(info.delivered.consumer_seq or 0) if info.delivered else 0


class OrderedReads:
    """The ordered-consumer reads of one connection."""

    def __init__(self, js: JetStreamContext, streams: Streams, settings: Settings) -> None:
        self._js = js
        self._streams = streams
        self._mapped = Mapped(settings)

    async def read(self, stream: str, subject: str, **options: Any) -> list[Msg]:
        """Messages of ``stream`` on ``subject`` read in one pass (``options``: where the
        consumer starts, as nats-py's ``subscribe`` takes them)."""
        with self._mapped:
            sub = await self._js.subscribe(subject, stream=stream, ordered_consumer=True, **options)
        found: list[Msg] = []
        try:
            with self._mapped:
                info = await sub.consumer_info()
                expected = delivered_so_far(info) + (info.num_pending or 0)
                for _ in range(expected):
                    msg = await sub.next_msg(timeout=NEXT_TIMEOUT)
                    found.append(msg)
                    if msg.metadata.num_pending == 0:
                        break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return found

    async def read_from(self, stream: str, subject: str, start: int) -> list[Msg]:
        """The messages of ``stream`` on ``subject`` from sequence ``start`` on, oldest first."""
        return await self.read(
            stream,
            subject,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start),
        )

    async def read_since(self, stream: str, subject: str, start: float) -> list[Msg]:
        """The messages of ``stream`` on ``subject`` stored from UNIX time ``start`` on, oldest
        first (the server finds where to start: nothing before is read)."""
        return await self.read(
            stream,
            subject,
            deliver_policy=api.DeliverPolicy.BY_START_TIME,
            config=api.ConsumerConfig(
                opt_start_time=datetime.datetime.fromtimestamp(start, tz=datetime.timezone.utc)
            ),
        )

    async def tail(
        self, stream: str, subject: str, enough: Callable[[list[Msg]], bool], want: int
    ) -> tuple[list[Msg], bool]:
        """The last messages of ``stream`` on ``subject``, newest first: a window of the
        stream's end (``want`` times 4, at least 256 sequences) growing fourfold until
        ``enough(messages)`` or the stream's start. Also says whether the start was reached.
        """
        info = await self._streams.stream_info(stream)
        first, last = int(info.state.first_seq or 0), int(info.state.last_seq or 0)
        if not info.state.messages:
            return [], True
        window = max(TAIL_MIN, want * TAIL_GROWTH)
        while True:
            start = max(first, last - window + 1)
            messages = list(reversed(await self.read_from(stream, subject, start)))
            if start <= first or enough(messages):
                return messages, start <= first
            window *= TAIL_GROWTH

    @contextlib.asynccontextmanager
    async def follow(
        self, stream: str, subject: str, start: int | None = None
    ) -> AsyncIterator[AsyncIterator[Msg]]:
        """The messages of ``stream`` on ``subject`` as they are stored, while the block
        runs: from sequence ``start`` on, or (``start`` None) only those stored from now."""
        if start is None:
            options: dict[str, Any] = {"deliver_policy": api.DeliverPolicy.NEW}
        else:
            options = {
                "config": api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
                )
            }
        with self._mapped:
            sub = await self._js.subscribe(subject, stream=stream, ordered_consumer=True, **options)
        try:
            yield sub.messages
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def read_bucket(self, bucket: str) -> list[KVEntry]:
        """Every live entry of KV bucket ``bucket``, read in one pass."""
        prefix = f"$KV.{bucket}."
        entries: dict[str, KVEntry] = {}
        messages = await self.read(
            f"KV_{bucket}", prefix + ">", deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT
        )
        for msg in messages:
            key = msg.subject[len(prefix) :]
            operation = (msg.headers or {}).get("KV-Operation")
            if operation in GONE or not msg.data:
                entries.pop(key, None)
            else:
                entries[key] = KVEntry(key, msg.data, msg.metadata.sequence.stream)
        return list(entries.values())

    async def mirror(
        self, bucket: str, on_entry: Callable[[str, bytes | None], None]
    ) -> asyncio.Task[None]:
        """Follow KV bucket ``bucket``: ``on_entry(key, value)`` for each live key now and
        for every change after (``value`` None when a key is deleted).

        Returns once the current contents were delivered (counted as in
        :meth:`read`); the returned task keeps following until cancelled.
        """
        prefix = f"$KV.{bucket}."
        received = 0
        expected: int | None = None
        caught_up = asyncio.Event()

        async def deliver(msg: Msg) -> None:
            nonlocal received
            received += 1
            operation = (msg.headers or {}).get("KV-Operation")
            gone = operation in GONE or not msg.data
            on_entry(msg.subject[len(prefix) :], None if gone else msg.data)
            if expected is not None and received >= expected:
                caught_up.set()

        with self._mapped:
            sub = await self._js.subscribe(
                prefix + ">",
                stream=f"KV_{bucket}",
                ordered_consumer=True,
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                cb=deliver,
            )
            info = await sub.consumer_info()
        expected = delivered_so_far(info) + (info.num_pending or 0)
        if received >= expected:
            caught_up.set()
        await asyncio.wait_for(caught_up.wait(), timeout=CATCH_UP_TIMEOUT)

        async def follow() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return asyncio.create_task(follow())
