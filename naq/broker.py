"""naq's resources on one connection: queues, dead letters, status, results, workers.

A :class:`Broker` pairs the shared :class:`~naq.transport.connection.Connection` with
the names of one prefix and the settings in force. Queue, Worker, results and the
monitor all go through it, so every stream, bucket and consumer is ensured in
one place and looked up once; it is what the modules above the transport use of it
(none of them touches nats-py), and every error it raises is a naq error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from naq.limits import QueueLimits, consumer_changes, limits_of, limits_of_config
from naq.models import DeadLetter, StatusRecord, WorkerRecord, record_encoder, status_decoder
from naq.names import Names
from naq.settings import Settings
from naq.transport import (
    ERR_WRONG_LAST_SEQUENCE,
    UNLIMITED_ACK_PENDING,
    Bucket,
    Connection,
    KVEntry,
    Msg,
    NotFound,
    PubAck,
    PublishError,
    consumer_config,
    failed_stream_config,
    get_connection,
    jobs_stream_config,
    metrics_stream_config,
    outcomes_stream_config,
)

#: Revisions kept per job in the status bucket.
STATUS_HISTORY = 5

#: Header carrying a JetStream per-message TTL (seconds).
TTL_HEADER = "Nats-TTL"
#: Header making a publish conditional on the subject's last sequence.
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
#: Header making a publish idempotent inside the stream's duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"


class Broker:
    """Connection + names + settings: everything naq reads and writes."""

    def __init__(self, connection: Connection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.names = Names(settings.prefix)
        # While this broker lives, user code releasing a lease never closes the connection.
        connection.hold(self)

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

    async def ensure_metrics_stream(self) -> None:
        """Make sure the stream of the workers' metrics reports exists."""
        await self.connection.ensure_stream(metrics_stream_config(self.names, self.settings))

    async def ensure_consumer(self, queue: str) -> str:
        """Make sure ``queue``'s shared durable consumer exists; returns its name."""
        name, _ack_wait = await self.take_consumer(queue)
        return name

    async def take_consumer(self, queue: str, *, set_ack_wait: bool = False) -> tuple[str, float]:
        """Make sure ``queue``'s shared durable consumer exists; returns its name and its
        ack wait (seconds). ``set_ack_wait`` gives an existing consumer the settings' ack
        wait (:meth:`naq.transport.resources.Resources.ensure_consumer`)."""
        await self.ensure_jobs_stream()
        config = consumer_config(self.names, self.settings, queue)
        ack_wait = await self.connection.ensure_consumer(
            self.names.jobs_stream, config, set_ack_wait=set_ack_wait
        )
        return config.durable_name or "", ack_wait

    # -- buckets -----------------------------------------------------------

    async def status_kv(self) -> Bucket:
        """The job-status bucket.

        It keeps a few revisions per job so that a watcher sees every change of
        a fast job (running, then completed a moment later) in order, not just
        the last one.
        """
        return await self.connection.kv(self.names.status_bucket, history=STATUS_HISTORY)

    async def results_kv(self) -> Bucket:
        """The results bucket."""
        return await self.connection.kv(self.names.results_bucket)

    async def cancelled_kv(self) -> Bucket:
        """The cancellation-requests bucket (entries expire with job statuses)."""
        return await self.connection.kv(
            self.names.cancelled_bucket, ttl=float(self.settings.job_status_ttl)
        )

    async def workers_kv(self) -> Bucket:
        """The worker-heartbeat bucket."""
        return await self.connection.kv(self.names.workers_bucket)

    async def read_status(self, job_id: str) -> StatusRecord | None:
        """A job's status record; None when it has none (or it can't be read as one)."""
        entry = await (await self.status_kv()).get(job_id)
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

    async def publish_metrics(
        self, worker: str, report: bytes, report_id: str, timeout: float
    ) -> None:
        """Store one of ``worker``'s metrics reports (awaited, at most ``timeout`` seconds).

        ``report_id`` is its message id: the same report sent again is stored once.

        Raises:
            NaqException: it was not stored (or its ack was lost).
        """
        await self.ensure_metrics_stream()
        try:
            await self.connection.publish(
                self.names.metrics_subject(worker),
                report,
                {MSG_ID_HEADER: report_id},
                timeout=timeout,
            )
        except BaseException:
            # The stream may have been deleted: the next report looks it up again.
            self.connection.resources.forget_stream(self.names.metrics_stream)
            raise

    # -- reads ---------------------------------------------------------------

    async def read_since(self, stream: str, subject: str, start: float) -> list[bytes]:
        """The data of the messages of ``stream`` on ``subject`` stored from UNIX time
        ``start`` on, oldest first; none when the stream does not exist."""
        try:
            messages = await self.connection.ordered.read_since(stream, subject, start)
        except NotFound:
            return []
        return [msg.data for msg in messages]

    async def read_stream(self, stream: str, subject: str) -> list[tuple[int, bytes]]:
        """Every message of ``stream`` on ``subject`` (wildcards allowed) as (seq, data)."""
        messages = await self.connection.ordered.read(stream, subject)
        return [(msg.metadata.sequence.stream, msg.data) for msg in messages]

    async def tail(
        self, stream: str, subject: str, enough: Callable[[list[Msg]], bool], want: int
    ) -> tuple[list[Msg], bool]:
        """The last messages of ``stream`` on ``subject``, newest first, until
        ``enough(messages)``; and whether that reached the stream's start
        (:meth:`naq.transport.ordered.OrderedReads.tail`)."""
        return await self.connection.ordered.tail(stream, subject, enough, want)

    async def read_stream_from(
        self, stream: str, subject: str, start: int
    ) -> list[tuple[int, bytes]]:
        """The messages of ``stream`` on ``subject`` from sequence ``start`` on, oldest
        first, as (seq, data)."""
        messages = await self.connection.ordered.read_from(stream, subject, start)
        return [(msg.metadata.sequence.stream, msg.data) for msg in messages]

    async def last_sequence(self, stream: str) -> int:
        """The sequence of the last message ``stream`` stored (0 before any)."""
        info = await self.connection.streams.stream_info(stream)
        return int(info.state.last_seq or 0)

    async def queue_stored_at(self, queue: str, start: int) -> float | None:
        """When the first job of ``queue`` at or after stream sequence ``start`` was stored
        in the jobs stream (the server's clock); None when there is none."""
        return await self.connection.streams.stored_at(
            self.names.jobs_stream, self.names.queue_subject(queue), start
        )

    async def read_queue(self, subject: str) -> list[tuple[int, bytes]]:
        """Every message on a queue ``subject`` of the jobs stream, as (seq, data).

        A work-queue stream admits no second consumer on a queue's subject: the
        messages are fetched one after another by sequence instead.
        """
        return await self.connection.streams.read_by_sequence(self.names.jobs_stream, subject)

    async def purge_subject(self, stream: str, subject: str, *, before: int | None = None) -> int:
        """Remove every message of ``stream`` on ``subject`` (wildcards allowed), or only
        those with a sequence below ``before``; returns how many."""
        return await self.connection.streams.purge(stream, subject, before=before)

    async def subject_counts(self, stream: str, subject: str) -> dict[str, int]:
        """Messages per subject of ``stream`` matching ``subject`` (server-side filter)."""
        return await self.connection.streams.subject_counts(stream, subject)

    async def read_bucket(self, bucket: str) -> list[KVEntry]:
        """Every live entry of ``bucket``, read in one pass of an ordered consumer."""
        return await self.connection.ordered.read_bucket(bucket)

    async def mirror(
        self, bucket: str, on_entry: Callable[[str, bytes | None], None]
    ) -> asyncio.Task[None]:
        """Follow ``bucket``: ``on_entry(key, value)`` for each live key now and for
        every change after (``value`` None when a key is deleted).

        Returns once the current contents were delivered; the returned task keeps
        following until cancelled.
        """
        return await self.connection.ordered.mirror(bucket, on_entry)

    @contextlib.asynccontextmanager
    async def follow_statuses(self, recent: int = 0) -> AsyncIterator[AsyncIterator[Msg]]:
        """Every status record written while the block runs (after the last ``recent``
        changes of the history, if asked), in the order they were stored."""
        await self.status_kv()
        start = None
        if recent:
            start = max(1, await self.status_changes() - recent + 1)
        subject = self.kv_subject(self.names.status_bucket, ">")
        async with self.connection.ordered.follow(self._status_stream, subject, start) as messages:
            yield messages

    @property
    def _status_stream(self) -> str:
        return f"KV_{self.names.status_bucket}"

    async def status_changes(self) -> int:
        """How many status changes were ever written (the status stream's last sequence)."""
        info = await self.connection.streams.stream_info(self._status_stream)
        return int(info.state.last_seq or 0)

    async def status_changes_at(self, seqs: list[int]) -> list[bytes]:
        """The status records at these sequences of the status stream (those still there)."""
        return await self.connection.streams.messages_at(self._status_stream, seqs)

    # -- queues' consumers -----------------------------------------------------

    async def queue_consumer(self, queue: str) -> Any:
        """The state of ``queue``'s shared consumer (pending, delivered, ack floor, paused)."""
        return await self.connection.streams.consumer_info(
            self.names.jobs_stream, self.names.consumer(queue)
        )

    async def queue_consumers(self) -> dict[str, Any]:
        """The state of every queue's consumer, by queue name."""
        prefix = self.names.consumer("")
        return {
            (info.name or "")[len(prefix) :]: info
            for info in await self.connection.streams.consumers_info(self.names.jobs_stream)
            if (info.name or "").startswith(prefix)
        }

    async def queue_limits(self, queue: str) -> QueueLimits:
        """``queue``'s limits (none when it has no consumer yet)."""
        try:
            return limits_of(await self.queue_consumer(queue))
        except NotFound:
            return QueueLimits()

    async def set_queue_limits(
        self, queue: str, change: Callable[[QueueLimits], QueueLimits]
    ) -> QueueLimits:
        """Give ``queue``'s consumer the limits ``change(its current limits)`` returns (one
        read of the consumer, one write), tell its workers, and return them."""
        consumer = await self.ensure_consumer(queue)
        limits = QueueLimits()

        def changes(config: Any) -> dict[str, Any]:
            nonlocal limits
            limits = change(limits_of_config(config))
            return consumer_changes(config.metadata, limits, UNLIMITED_ACK_PENDING)

        await self.connection.streams.update_consumer(self.names.jobs_stream, consumer, changes)
        await self.connection.send(self.names.queue_limits_subject(queue))
        return limits

    async def rates_kv(self) -> Bucket:
        """The bucket of when each rate-limited queue's next job may start."""
        return await self.connection.kv(self.names.rates_bucket)

    async def pause_queue(self, queue: str, until: str) -> None:
        """Keep every worker from taking ``queue``'s jobs until ``until`` (RFC 3339)."""
        consumer = await self.ensure_consumer(queue)
        await self.connection.streams.pause_consumer(self.names.jobs_stream, consumer, until)

    async def resume_queue(self, queue: str) -> None:
        """Let workers take ``queue``'s jobs again."""
        consumer = await self.ensure_consumer(queue)
        await self.connection.streams.resume_consumer(self.names.jobs_stream, consumer)
        # Workers' waiting pull requests need a nudge to be served again.
        await self.connection.send(self.names.queue_resumed_subject(queue))

    async def delete_dead_letter(self, seq: int) -> bool:
        """Delete the dead letter at ``seq``; False when there is none (anymore)."""
        return await self.connection.streams.delete_msg(self.names.failed_stream, seq)


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
