"""JetStream's stream and consumer API as naq uses it: information, pause and resume,
message reads by sequence, deletes and purges, with naq's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from naq.errors import NaqException
from naq.settings import Settings
from naq.transport.errors import ERR_MSG_DELETE_FAILED, JetStreamError, Mapped, NotFound

#: Seconds a purge request waits for its answer.
PURGE_TIMEOUT = 10.0


class _PurgeResponse(msgspec.Struct):
    success: bool = False
    purged: int = 0
    error: dict[str, Any] | None = None


_purge_decoder = msgspec.json.Decoder(_PurgeResponse)


class Streams:
    """The stream and consumer requests of one connection."""

    def __init__(self, nc: NATS, js: JetStreamContext, settings: Settings) -> None:
        self._nc = nc
        self._js = js
        self._mapped = Mapped(settings)

    async def stream_info(self, stream: str, subjects_filter: str | None = None) -> Any:
        """``stream``'s configuration and state (with its subjects matching the filter)."""
        with self._mapped:
            return await self._js.stream_info(stream, subjects_filter=subjects_filter)

    async def subject_counts(self, stream: str, subject: str) -> dict[str, int]:
        """Messages per subject of ``stream`` matching ``subject`` (server-side filter)."""
        info = await self.stream_info(stream, subjects_filter=subject)
        return dict(info.state.subjects or {})

    async def consumer_info(self, stream: str, consumer: str) -> Any:
        """A consumer's configuration and state (pending, delivered, ack floor, paused)."""
        with self._mapped:
            return await self._js.consumer_info(stream, consumer)

    async def consumers_info(self, stream: str) -> list[Any]:
        """Every consumer of ``stream`` with its state."""
        with self._mapped:
            return list(await self._js.consumers_info(stream))

    async def update_consumer(
        self, stream: str, consumer: str, changes: Callable[[Any], dict[str, Any]]
    ) -> Any:
        """Change fields of a consumer's configuration to ``changes(its config)`` (the rest,
        a pause included, kept): one read and one write; returns its new info."""
        with self._mapped:
            info = await self._js.consumer_info(stream, consumer)
            return await self._js.add_consumer(stream, info.config.evolve(**changes(info.config)))

    async def pause_consumer(self, stream: str, consumer: str, until: str) -> None:
        """Stop the consumer handing out messages until ``until`` (an RFC 3339 time)."""
        with self._mapped:
            await self._js.pause_consumer(stream, consumer, until)

    async def resume_consumer(self, stream: str, consumer: str) -> None:
        """Let a paused consumer hand out messages again."""
        with self._mapped:
            await self._js.resume_consumer(stream, consumer)

    async def delete_msg(self, stream: str, seq: int) -> bool:
        """Delete the message at ``seq``; False when there is none (deleted, or never stored)."""
        try:
            with self._mapped:
                return bool(await self._js.delete_msg(stream, seq))
        except NotFound:
            return False
        except JetStreamError as exc:
            if exc.err_code == ERR_MSG_DELETE_FAILED:
                return False
            raise

    async def read_by_sequence(self, stream: str, subject: str) -> list[tuple[int, bytes]]:
        """Every message of ``stream`` on ``subject``, oldest first, as (seq, data), fetched
        one after another by sequence (where no consumer may be made, as on a work queue)."""
        messages: list[tuple[int, bytes]] = []
        seq = 1
        while True:
            try:
                with self._mapped:
                    msg = await self._js.get_msg(stream, seq=seq, subject=subject, next=True)
            except NotFound:
                return messages
            messages.append((int(msg.seq or seq), msg.data or b""))
            seq = int(msg.seq or seq) + 1

    async def messages_at(self, stream: str, seqs: list[int]) -> list[bytes]:
        """The data of the messages at ``seqs`` that are still there (requests sent together)."""

        async def one(seq: int) -> bytes | None:
            try:
                with self._mapped:
                    msg = await self._js.get_msg(stream, seq=seq)
            except NotFound:
                return None
            return msg.data or b""

        found = await asyncio.gather(*(one(seq) for seq in seqs))
        return [data for data in found if data is not None]

    async def stored_at(self, stream: str, subject: str, start: int) -> float | None:
        """When the stream stored its first message on ``subject`` at or after sequence
        ``start`` (UNIX seconds, the server's clock); None when there is none. One request,
        whatever the stream holds."""
        try:
            with self._mapped:
                msg = await self._js.get_msg(stream, seq=max(1, start), subject=subject, next=True)
        except NotFound:
            return None
        return msg.time.timestamp() if msg.time is not None else None

    async def purge(self, stream: str, subject: str, *, before: int | None = None) -> int:
        """Remove every message of ``stream`` on ``subject`` (wildcards allowed), or only
        those with a sequence below ``before``; returns how many."""
        request: dict[str, Any] = {"filter": subject}
        if before is not None:
            request["seq"] = before
        with self._mapped:
            reply = await self._nc.request(
                f"$JS.API.STREAM.PURGE.{stream}",
                msgspec.json.encode(request),
                timeout=PURGE_TIMEOUT,
            )
        response = _purge_decoder.decode(reply.data)
        if response.error:
            raise NaqException(f"purge of {subject} failed: {response.error}")
        return response.purged
