"""naq's resources on one connection: queues, dead letters, status, results, workers.

A :class:`Broker` pairs the shared :class:`~naq.connection.Connection` with the
names of one prefix and the settings in force. Queue, Worker, results and the
monitor all go through it, so every stream, bucket and consumer is ensured in
one place and looked up once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from naq.connection import (
    ERR_WRONG_LAST_SEQUENCE,
    Connection,
    KeyNotFoundError,
    KeyValue,
    NotFoundError,
    PubAck,
    PublishError,
    api,
    consumer_config,
    failed_stream_config,
    get_connection,
    jobs_stream_config,
    outcomes_stream_config,
)
from naq.errors import NaqException
from naq.models import DeadLetter, StatusRecord, WorkerRecord, record_encoder, status_decoder
from naq.names import Names
from naq.settings import Settings


class _PurgeResponse(msgspec.Struct):
    success: bool = False
    purged: int = 0
    error: dict[str, Any] | None = None


_purge_decoder = msgspec.json.Decoder(_PurgeResponse)

log = logging.getLogger("naq.broker")

#: Revisions kept per job in the status bucket.
STATUS_HISTORY = 5

#: Header carrying a JetStream per-message TTL (seconds).
TTL_HEADER = "Nats-TTL"
#: Header making a publish conditional on the subject's last sequence.
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
#: A stream's tail is first read over this many sequences (or the page wanted times the
#: growth), then over windows growing by the growth until it holds enough.
TAIL_MIN = 256
TAIL_GROWTH = 4
#: Header making a publish idempotent inside the stream's duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True)
class KVEntry:
    """A live key of a bucket as :meth:`Broker.read_bucket` returns it."""

    key: str
    value: bytes
    revision: int


class Broker:
    """Connection + names + settings: everything naq reads and writes."""

    def __init__(self, connection: Connection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.names = Names(settings.prefix)

    @classmethod
    async def connect(cls, settings: Settings) -> Broker:
        """A broker on the shared connection for ``settings``.

        Raises:
            NaqConnectionError: NATS can't be reached.
        """
        return cls(await get_connection(settings), settings)

    # -- streams and consumers --------------------------------------------

    async def ensure_jobs_stream(self) -> None:
        """Make sure the jobs stream exists."""
        await self.connection.ensure_stream(jobs_stream_config(self.names, self.settings))

    async def ensure_failed_stream(self) -> None:
        """Make sure the dead-letter stream exists."""
        await self.connection.ensure_stream(failed_stream_config(self.names, self.settings))

    async def ensure_outcomes_stream(self) -> None:
        """Make sure the outcome log exists."""
        await self.connection.ensure_stream(outcomes_stream_config(self.names, self.settings))

    async def ensure_consumer(self, queue: str) -> str:
        """Make sure ``queue``'s shared durable consumer exists; returns its name."""
        await self.ensure_jobs_stream()
        config = consumer_config(self.names, self.settings, queue)
        await self.connection.ensure_consumer(self.names.jobs_stream, config)
        return config.durable_name or ""

    # -- buckets -----------------------------------------------------------

    async def status_kv(self) -> KeyValue:
        """The job-status bucket.

        It keeps a few revisions per job so that a watcher sees every change of
        a fast job (running, then completed a moment later) in order, not just
        the last one.
        """
        return await self.connection.kv(self.names.status_bucket, history=STATUS_HISTORY)

    async def results_kv(self) -> KeyValue:
        """The results bucket."""
        return await self.connection.kv(self.names.results_bucket)

    async def cancelled_kv(self) -> KeyValue:
        """The cancellation-requests bucket (entries expire with job statuses)."""
        return await self.connection.kv(
            self.names.cancelled_bucket, ttl=float(self.settings.job_status_ttl)
        )

    async def workers_kv(self) -> KeyValue:
        """The worker-heartbeat bucket."""
        return await self.connection.kv(self.names.workers_bucket)

    async def read_status(self, job_id: str) -> StatusRecord | None:
        """A job's status record; None when it has none (or it can't be read as one)."""
        entry = await self.get_entry(await self.status_kv(), job_id)
        return decode_or_none(status_decoder, entry.value) if entry else None

    def kv_subject(self, bucket: str, key: str) -> str:
        """Subject of ``key`` in ``bucket`` (for pipelined writes)."""
        return f"$KV.{bucket}.{key}"

    # -- writes --------------------------------------------------------------

    async def put_worker(self, record: WorkerRecord) -> asyncio.Future[PubAck]:
        """Write a worker heartbeat; it expires after the worker's TTL."""
        await self.workers_kv()
        return self.connection.publish_nowait(
            self.kv_subject(self.names.workers_bucket, record.name),
            record_encoder.encode(record),
            {TTL_HEADER: str(max(1, int(record.ttl)))},
        )

    async def dead_letter(self, letter: DeadLetter) -> PubAck:
        """Move a job to the failed stream (awaited: the caller acks the original after)."""
        await self.ensure_failed_stream()
        return await self.connection.publish(
            self.names.failed_subject(letter.queue), record_encoder.encode(letter)
        )

    # -- reads ---------------------------------------------------------------

    async def read_stream(self, stream: str, subject: str) -> list[tuple[int, bytes]]:
        """Every message of ``stream`` on ``subject`` (wildcards allowed) as (seq, data)."""
        messages = await self._read_ordered(stream, subject)
        return [(msg.metadata.sequence.stream, msg.data) for msg in messages]

    async def read_from(self, stream: str, subject: str, start: int) -> list[Any]:
        """The messages of ``stream`` on ``subject`` from sequence ``start`` on, oldest first."""
        return await self._read_ordered(
            stream,
            subject,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start),
        )

    async def _read_ordered(self, stream: str, subject: str, **options: Any) -> list[Any]:
        """Messages of ``stream`` on ``subject`` read in one pass of an ordered consumer
        (``options``: where it starts).

        How many to expect is taken from the consumer itself (delivered so far + still
        pending) right after it starts, so a read never stops early on a "caught up"
        signal that raced the first messages, nor waits for a message that isn't there.
        """
        try:
            sub = await self.connection.js.subscribe(
                subject, stream=stream, ordered_consumer=True, **options
            )
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        found: list[Any] = []
        try:
            info = await sub.consumer_info()
            expected = delivered_so_far(info) + (info.num_pending or 0)
            for _ in range(expected):
                msg = await sub.next_msg(timeout=10)
                found.append(msg)
                if msg.metadata.num_pending == 0:
                    break
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return found

    async def tail(
        self, stream: str, subject: str, enough: Callable[[list[Any]], bool], want: int
    ) -> tuple[list[Any], bool]:
        """The last messages of ``stream`` on ``subject``, newest first: a window of the
        stream's end (``want`` times 4, at least 256 sequences) growing fourfold until
        ``enough(messages)`` or the stream's start. Also says whether the start was reached.
        """
        try:
            info = await self.connection.js.stream_info(stream)
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
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

    async def read_queue(self, subject: str) -> list[tuple[int, bytes]]:
        """Every message on a queue ``subject`` of the jobs stream, as (seq, data).

        A work-queue stream admits no second consumer on a queue's subject: the
        messages are fetched one after another by sequence instead.
        """
        stream = self.names.jobs_stream
        messages: list[tuple[int, bytes]] = []
        seq = 1
        while True:
            try:
                msg = await self.connection.js.get_msg(stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return messages
            except Exception as exc:
                raise self.connection.map_error(exc) from exc
            messages.append((int(msg.seq or seq), msg.data or b""))
            seq = int(msg.seq or seq) + 1

    async def purge_subject(self, stream: str, subject: str, *, before: int | None = None) -> int:
        """Remove every message of ``stream`` on ``subject`` (wildcards allowed), or only
        those with a sequence below ``before``; returns how many."""
        request: dict[str, Any] = {"filter": subject}
        if before is not None:
            request["seq"] = before
        try:
            reply = await self.connection.nc.request(
                f"$JS.API.STREAM.PURGE.{stream}", msgspec.json.encode(request), timeout=10
            )
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        response = _purge_decoder.decode(reply.data)
        if response.error:
            raise NaqException(f"purge of {subject} failed: {response.error}")
        return response.purged

    async def subject_counts(self, stream: str, subject: str) -> dict[str, int]:
        """Messages per subject of ``stream`` matching ``subject`` (server-side filter)."""
        try:
            info = await self.connection.js.stream_info(stream, subjects_filter=subject)
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        return dict(info.state.subjects or {})

    async def read_bucket(self, bucket: str) -> list[KVEntry]:
        """Every live entry of ``bucket``, read in one pass of an ordered consumer."""
        prefix = f"$KV.{bucket}."
        entries: dict[str, KVEntry] = {}
        messages = await self._read_ordered(
            f"KV_{bucket}", prefix + ">", deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT
        )
        for msg in messages:
            key = msg.subject[len(prefix) :]
            operation = (msg.headers or {}).get("KV-Operation")
            if operation in ("DEL", "PURGE") or not msg.data:
                entries.pop(key, None)
            else:
                entries[key] = KVEntry(key, msg.data, msg.metadata.sequence.stream)
        return list(entries.values())

    async def mirror(
        self, bucket: str, on_entry: Callable[[str, bytes | None], None]
    ) -> asyncio.Task[None]:
        """Follow ``bucket``: ``on_entry(key, value)`` for each live key now and for
        every change after (``value`` None when a key is deleted).

        Returns once the current contents were delivered (counted as in
        :meth:`read_bucket`); the returned task keeps following until cancelled.
        """
        prefix = f"$KV.{bucket}."
        received = 0
        expected: int | None = None
        caught_up = asyncio.Event()

        async def deliver(msg: Any) -> None:
            nonlocal received
            received += 1
            operation = (msg.headers or {}).get("KV-Operation")
            gone = operation in ("DEL", "PURGE") or not msg.data
            on_entry(msg.subject[len(prefix) :], None if gone else msg.data)
            if expected is not None and received >= expected:
                caught_up.set()

        try:
            sub = await self.connection.js.subscribe(
                prefix + ">",
                stream=f"KV_{bucket}",
                ordered_consumer=True,
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                cb=deliver,
            )
            info = await sub.consumer_info()
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        expected = delivered_so_far(info) + (info.num_pending or 0)
        if received >= expected:
            caught_up.set()
        await asyncio.wait_for(caught_up.wait(), timeout=30)

        async def follow() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return asyncio.create_task(follow())

    async def get_entry(self, kv: KeyValue, key: str) -> Any | None:
        """The KV entry for ``key`` or None (deleted, expired or never written)."""
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        except Exception as exc:
            raise self.connection.map_error(exc) from exc
        if entry.value is None or entry.operation in ("DEL", "PURGE"):
            return None
        return entry


def delivered_so_far(info: Any) -> int:
    """Messages a consumer has delivered, from its info."""
    return int(info.delivered.consumer_seq or 0) if info.delivered else 0


def is_duplicate_result(exc: BaseException) -> bool:
    """Whether a failed result write means another result was stored first."""
    return isinstance(exc, PublishError) and exc.err_code == ERR_WRONG_LAST_SEQUENCE


def decode_or_none(decoder: msgspec.json.Decoder[Any], data: bytes | None) -> Any:
    """Decode ``data`` with ``decoder``; None for missing or undecodable data."""
    if not data:
        return None
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        return None
