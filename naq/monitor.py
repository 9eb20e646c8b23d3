"""Read models for the CLI and the TUI: queues and workers (the TUI follows them live
through :mod:`naq.feed`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.limits import QueueLimits, limits_of
from naq.models import WorkerRecord, worker_decoder
from naq.outcome_log import OutcomeCounts, outcome_counts
from naq.results import resolve_settings
from naq.schedules import ScheduleStore
from naq.settings import Settings
from naq.sync import sync_twin
from naq.transport import delivered_so_far


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as its last heartbeat describes it."""

    name: str
    host: str
    pid: int
    queues: list[str]
    status: str
    concurrency: int
    running: list[str]
    processed: int
    failed: int
    started_at: float
    heartbeat_at: float
    #: CPU time the worker's process used since its previous heartbeat, in % of one core.
    cpu_percent: float | None = None
    #: The worker process's resident memory (bytes).
    rss_bytes: int | None = None
    #: Whether it shares its slots among its queues in turn; else it takes them strictly
    #: in the order of :attr:`queues`.
    fair: bool = False

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, time.time() - self.heartbeat_at)

    @classmethod
    def from_record(cls, record: WorkerRecord) -> WorkerInfo:
        """Build from a heartbeat record."""
        return cls(
            name=record.name,
            host=record.host,
            pid=record.pid,
            queues=list(record.queues),
            status=record.status,
            concurrency=record.concurrency,
            running=list(record.running),
            processed=record.processed,
            failed=record.failed,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
            cpu_percent=record.cpu_percent,
            rss_bytes=record.rss_bytes,
            fair=record.fair,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``), with the heartbeat age."""
        data = dict(self.__dict__)
        data["heartbeat_age"] = round(self.heartbeat_age, 3)
        return data

    def queue_order(self) -> str:
        """Its queues as it takes them: see :func:`queue_order`."""
        return queue_order(self.queues, self.fair)


def queue_order(queues: Sequence[str], fair: bool) -> str:
    """A worker's queues as it takes them: ``"high › default › low"`` in strict order,
    ``"a, b (fair)"`` when it shares its slots (``fair``)."""
    if len(queues) < 2:
        return ", ".join(queues)
    return ", ".join(queues) + " (fair)" if fair else " › ".join(queues)


async def list_workers(
    *, nats_url: str | None = None, settings: Settings | None = None
) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, by name.

    Raises:
        NaqConnectionError: NATS can't be reached.
    """
    return await live_workers(await Broker.connect(resolve_settings(nats_url, settings)))


async def live_workers(broker: Broker) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, by name, read through ``broker``."""
    await broker.workers_kv()
    entries = await broker.read_bucket(broker.names.workers_bucket)
    workers = []
    for entry in entries:
        record = decode_or_none(worker_decoder, entry.value)
        if record is not None and time.time() - record.heartbeat_at <= record.ttl:
            workers.append(WorkerInfo.from_record(record))
    return sorted(workers, key=lambda w: w.name)


list_workers_sync = sync_twin(list_workers)


@dataclass(frozen=True)
class QueueStats:
    """A queue at a glance."""

    name: str
    pending: int
    running: int
    scheduled: int
    completed: int
    failed: int
    paused: bool
    #: Jobs taken per second over the last minute (from the consumer's delivered count).
    rate: float
    #: Seconds the oldest pending job has waited (0.0 when none is): see :func:`queue_latency`.
    latency: float = 0.0
    #: Its limits over all its workers (:meth:`naq.Queue.set_limits`).
    limits: QueueLimits = field(default_factory=QueueLimits)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        return {**self.__dict__, "limits": self.limits.to_dict()}


#: (prefix, queue) -> samples of (monotonic time, delivered count) for the rate.
_deliveries: dict[tuple[str, str], list[tuple[float, int]]] = {}


def delivery_rate(key: tuple[str, str], delivered: int) -> float:
    now = time.monotonic()
    samples = [s for s in _deliveries.get(key, []) if now - s[0] <= 60.0]
    samples.append((now, delivered))
    _deliveries[key] = samples
    first = samples[0]
    if now - first[0] < 0.5:
        return 0.0
    return max(0.0, (delivered - first[1]) / (now - first[0]))


def stats_of(
    broker: Broker,
    queue: str,
    consumer: Any | None,
    *,
    waiting: int = 0,
    scheduled: int = 0,
    counts: OutcomeCounts | None = None,
    latency: float = 0.0,
) -> QueueStats:
    """A queue's stats from its consumer's info (None before any worker made it; then
    ``waiting`` jobs are pending), its schedules, its outcome counts and its latency
    (:func:`queue_latency`): the one rule behind ``stats()``, ``naq queues``, the TUI and
    the exporter."""
    counts = counts or OutcomeCounts()
    return QueueStats(
        name=queue,
        pending=pending_of(consumer, waiting),
        running=(consumer.num_ack_pending or 0) if consumer else 0,
        scheduled=scheduled,
        completed=counts.completed,
        failed=counts.failed,
        paused=bool(consumer and getattr(consumer, "paused", False)),
        rate=round(delivery_rate((broker.settings.prefix, queue), delivered_so_far(consumer)), 2)
        if consumer
        else 0.0,
        latency=latency,
        limits=limits_of(consumer),
    )


def pending_of(consumer: Any | None, waiting: int) -> int:
    """Jobs of a queue never delivered yet: its consumer's count, or (no consumer yet)
    every job ``waiting`` on its subject."""
    return (consumer.num_pending or 0) if consumer else waiting


async def queue_latency(
    broker: Broker, queue: str, consumer: Any | None, waiting: int = 0
) -> float:
    """Seconds the oldest pending job of ``queue`` has waited; 0.0 when none is pending.

    Pending means stored and never delivered: the jobs after the last stream sequence the
    queue's consumer delivered (every job on the subject before any worker made the
    consumer). A job delivered already and waiting for its retry's delay, or for its
    redelivery after a lost worker, is not pending and does not count. The age is taken
    from the time the stream stored the oldest pending job: one request when jobs are
    pending, none when not, and no message scanned.
    """
    if not pending_of(consumer, waiting):
        return 0.0
    start = int(consumer.delivered.stream_seq or 0) + 1 if consumer and consumer.delivered else 1
    stored = await broker.queue_stored_at(queue, start)
    if stored is None:  # taken meanwhile
        return 0.0
    return max(0.0, time.time() - stored)


async def queue_stats(broker: Broker, queue: str) -> QueueStats:
    """Stats of one queue from its consumer, the outcome log and the schedules."""
    await broker.ensure_consumer(queue)
    info = await broker.queue_consumer(queue)
    counts = (await outcome_counts(broker, queue)).get(queue)
    schedules = await ScheduleStore(broker).all()
    scheduled = sum(1 for record, _ in schedules if record.queue == queue)
    latency = await queue_latency(broker, queue, info)
    return stats_of(broker, queue, info, scheduled=scheduled, counts=counts, latency=latency)


async def current_queue_stats(
    broker: Broker,
    *,
    scheduled: dict[str, int] | None = None,
    counts: dict[str, OutcomeCounts] | None = None,
) -> dict[str, QueueStats]:
    """Stats of every queue with a consumer, jobs waiting or (in ``scheduled``) schedules,
    by name, read without making consumers: a request for the consumers, one for the jobs
    stream's subjects, one per queue with jobs pending. ``scheduled`` and ``counts``
    (schedules and outcome counts per queue) are the caller's to give, when it shows them.
    """
    names = broker.names
    by_consumer = await broker.queue_consumers()
    waiting = {
        names.queue_from_subject(subject): count
        for subject, count in (
            await broker.subject_counts(names.jobs_stream, names.queue_subject("*"))
        ).items()
    }
    scheduled = scheduled or {}
    counts = counts or {}
    queues = sorted(set(by_consumer) | set(waiting) | set(scheduled))
    latencies = await asyncio.gather(
        *(queue_latency(broker, q, by_consumer.get(q), waiting.get(q, 0)) for q in queues)
    )
    return {
        queue: stats_of(
            broker,
            queue,
            by_consumer.get(queue),
            waiting=waiting.get(queue, 0),
            scheduled=scheduled.get(queue, 0),
            counts=counts.get(queue),
            latency=latency,
        )
        for queue, latency in zip(queues, latencies, strict=True)
    }


async def all_queue_stats(
    names: list[str] | None = None,
    *,
    nats_url: str | None = None,
    settings: Settings | None = None,
) -> list[QueueStats]:
    """Stats of ``names``, or of every queue that has a consumer, by name."""
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    if names is None:
        await broker.ensure_jobs_stream()
        # Queues with a worker's consumer, and queues with jobs waiting for one.
        found = set(await broker.queue_consumers())
        waiting = await broker.subject_counts(
            broker.names.jobs_stream, broker.names.queue_subject("*")
        )
        found.update(broker.names.queue_from_subject(s) for s in waiting)
        names = sorted(found)
    return [await queue_stats(broker, name) for name in names]


all_queue_stats_sync = sync_twin(all_queue_stats)
