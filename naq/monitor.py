"""Read models for the CLI and the TUI: queues and workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from naq.broker import Broker, decode_or_none, delivered_so_far
from naq.connection import api, open_connection
from naq.dead_letters import list_failed_jobs
from naq.errors import NaqException
from naq.models import WorkerRecord, schedule_decoder, status_decoder, worker_decoder
from naq.results import resolve_settings
from naq.schedules import ScheduleInfo, ScheduleStore
from naq.settings import Settings
from naq.sync import sync_twin

log = logging.getLogger("naq.monitor")


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
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``), with the heartbeat age."""
        data = dict(self.__dict__)
        data["heartbeat_age"] = round(self.heartbeat_age, 3)
        return data


async def list_workers(
    *, nats_url: str | None = None, settings: Settings | None = None
) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, by name.

    Raises:
        NaqConnectionError: NATS can't be reached.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
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

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        return dict(self.__dict__)


#: (prefix, queue) -> samples of (monotonic time, delivered count) for the rate.
_deliveries: dict[tuple[str, str], list[tuple[float, int]]] = {}


def _rate(key: tuple[str, str], delivered: int) -> float:
    now = time.monotonic()
    samples = [s for s in _deliveries.get(key, []) if now - s[0] <= 60.0]
    samples.append((now, delivered))
    _deliveries[key] = samples
    first = samples[0]
    if now - first[0] < 0.5:
        return 0.0
    return max(0.0, (delivered - first[1]) / (now - first[0]))


async def queue_stats(broker: Broker, queue: str) -> QueueStats:
    """Stats of one queue from its consumer, the dead letters and the schedules."""
    names = broker.names
    js = broker.connection.js
    consumer = await broker.ensure_consumer(queue)
    try:
        info = await js.consumer_info(names.jobs_stream, consumer)
        await broker.ensure_failed_stream()
        failed_info = await js.stream_info(
            names.failed_stream, subjects_filter=names.failed_subject(queue)
        )
    except Exception as exc:
        raise broker.connection.map_error(exc) from exc
    failed = sum((failed_info.state.subjects or {}).values())
    schedules = await ScheduleStore(broker).all()
    scheduled = sum(1 for record, _ in schedules if record.queue == queue)
    delivered = delivered_so_far(info)
    completed = max(0, (info.ack_floor.consumer_seq or 0) - failed) if info.ack_floor else 0
    return QueueStats(
        name=queue,
        pending=info.num_pending or 0,
        running=info.num_ack_pending or 0,
        scheduled=scheduled,
        completed=completed,
        failed=failed,
        paused=bool(getattr(info, "paused", False)),
        rate=round(_rate((broker.settings.prefix, queue), delivered), 2),
    )


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
        prefix = broker.names.consumer("")
        js = broker.connection.js
        try:
            infos = await js.consumers_info(broker.names.jobs_stream)
            stream = await js.stream_info(
                broker.names.jobs_stream, subjects_filter=broker.names.queue_subject("*")
            )
        except Exception as exc:
            raise broker.connection.map_error(exc) from exc
        # Queues with a worker's consumer, and queues with jobs waiting for one.
        found = {
            (info.name or "")[len(prefix) :]
            for info in infos
            if (info.name or "").startswith(prefix)
        }
        found.update(broker.names.queue_from_subject(s) for s in stream.state.subjects or {})
        names = sorted(found)
    return [await queue_stats(broker, name) for name in names]


all_queue_stats_sync = sync_twin(all_queue_stats)


# -- the live feed ------------------------------------------------------------------

#: Status changes read back from history when a feed starts (the most recent ones).
RECENT_STATUS_CHANGES = 3000
#: Seconds between reads of stream and consumer counts (not watchable in NATS).
STATS_INTERVAL = 1.0


@dataclass(frozen=True)
class FeedEvent:
    """A change seen by :class:`Feed`: ``kind`` is queue, worker, schedule, job, failed or
    connection; ``value`` is None when the thing went away."""

    kind: str
    key: str
    value: Any


class Feed:
    """Everything an operator's screen shows, as a stream of changes.

    Workers, schedules and dead letters come from watches (KV and stream
    consumers); jobs from the tail of the job-status history and then every
    change; queue counts from one read of stream and consumer state per
    second. ``events()`` first delivers the current state, then changes; a
    lost connection is reported and, once back, the state is delivered again.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ",".join(settings.servers)
        self._events: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._connection: Any = None
        self._workers: dict[str, WorkerRecord] = {}
        self._schedules: dict[str, Any] = {}
        self._failed: dict[str, Any] = {}
        self._queues: dict[str, QueueStats] = {}

    def _emit(self, kind: str, key: str, value: Any) -> None:
        self._events.put_nowait(FeedEvent(kind, key, value))

    async def events(self) -> AsyncIterator[FeedEvent]:
        """The current state, then every change, until the iterator is closed."""
        runner = asyncio.create_task(self._run())
        try:
            while True:
                yield await self._events.get()
        finally:
            runner.cancel()
            for task in self._tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await runner
            if self._connection is not None:
                await self._connection.close()

    async def _run(self) -> None:
        while self._connection is None:
            try:
                self._connection = await open_connection(
                    self.settings,
                    name="naq-monitor",
                    on_disconnect=self._on_disconnect,
                    on_reconnect=self._on_reconnect,
                )
            except NaqException as exc:
                self._emit("connection", "disconnected", str(exc))
                await asyncio.sleep(2.0)
        self._emit("connection", "connected", "")
        await self._start()

    async def _on_disconnect(self) -> None:
        self._emit("connection", "reconnecting", "connection lost; reconnecting")

    async def _on_reconnect(self) -> None:
        self._emit("connection", "connected", "")
        # Watches may have died with the server: start them again and resend the state.
        asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        await asyncio.sleep(0.5)
        try:
            await self._start()
        except Exception as exc:
            log.warning("monitor: restarting watches failed: %r", exc)
            self._emit("connection", "reconnecting", f"catching up failed: {exc}")

    async def _start(self) -> None:
        broker = Broker(self._connection, self.settings)
        names = broker.names
        await broker.ensure_jobs_stream()
        await broker.ensure_failed_stream()
        for ensure in (broker.status_kv, broker.results_kv, broker.workers_kv):
            await ensure()
        await broker.connection.kv(names.scheduled_bucket)
        seen_workers: set[str] = set()
        seen_schedules: set[str] = set()

        def on_worker(key: str, value: bytes | None) -> None:
            record = decode_or_none(worker_decoder, value) if value else None
            seen_workers.add(key)
            if record is None:
                self._workers.pop(key, None)
                self._emit("worker", key, None)
            else:
                self._workers[key] = record
                if time.time() - record.heartbeat_at <= record.ttl:
                    self._emit("worker", key, WorkerInfo.from_record(record))

        def on_schedule(key: str, value: bytes | None) -> None:
            record = decode_or_none(schedule_decoder, value) if value else None
            seen_schedules.add(key)
            if record is None:
                self._schedules.pop(key, None)
                self._emit("schedule", key, None)
            else:
                self._schedules[key] = record
                self._emit("schedule", key, ScheduleInfo.from_record(record))

        self._tasks.append(await broker.mirror(names.workers_bucket, on_worker))
        self._tasks.append(await broker.mirror(names.scheduled_bucket, on_schedule))
        # Whatever vanished while we were away goes from the screen too.
        for key in set(self._workers) - seen_workers:
            self._workers.pop(key, None)
            self._emit("worker", key, None)
        for key in set(self._schedules) - seen_schedules:
            self._schedules.pop(key, None)
            self._emit("schedule", key, None)
        self._tasks.append(asyncio.create_task(self._follow_jobs(broker)))
        await self._sync_failed(broker)
        self._tasks.append(asyncio.create_task(self._poll_counts(broker)))

    async def _follow_jobs(self, broker: Broker) -> None:
        try:
            await self._follow_jobs_from_recent(broker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection went; a reconnect restarts the feed
            log.warning("monitor: job feed stopped: %r", exc)

    async def _follow_jobs_from_recent(self, broker: Broker) -> None:
        names = broker.names
        js = broker.connection.js
        info = await js.stream_info(f"KV_{names.status_bucket}")
        start = max(1, (info.state.last_seq or 0) - RECENT_STATUS_CHANGES + 1)
        sub = await js.subscribe(
            broker.kv_subject(names.status_bucket, ">"),
            stream=f"KV_{names.status_bucket}",
            ordered_consumer=True,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
            ),
        )
        try:
            async for msg in sub.messages:
                record = decode_or_none(status_decoder, msg.data)
                if record is not None:
                    self._emit("job", record.job_id, record)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _sync_failed(self, broker: Broker) -> None:
        current = {
            (job.job_id or f"#{job.seq}"): job
            for job in await list_failed_jobs(settings=broker.settings)
        }
        for key in set(self._failed) - set(current):
            self._emit("failed", key, None)
        for key, job in current.items():
            if key not in self._failed:
                self._emit("failed", key, job)
        self._failed = current

    async def _poll_counts(self, broker: Broker) -> None:
        names = broker.names
        js = broker.connection.js
        prefix = names.consumer("")
        failed_total = -1
        while True:
            try:
                consumers = await js.consumers_info(names.jobs_stream)
                pending = await js.stream_info(
                    names.jobs_stream, subjects_filter=names.queue_subject("*")
                )
                failed = await js.stream_info(
                    names.failed_stream, subjects_filter=names.failed_subject("*")
                )
            except Exception as exc:
                log.debug("monitor: reading counts failed: %r", exc)
                await asyncio.sleep(STATS_INTERVAL)
                continue
            failed_by_queue = {
                names.queue_from_failed_subject(s): n
                for s, n in (failed.state.subjects or {}).items()
            }
            waiting = {
                names.queue_from_subject(s): n for s, n in (pending.state.subjects or {}).items()
            }
            by_consumer = {
                (c.name or "")[len(prefix) :]: c
                for c in consumers
                if (c.name or "").startswith(prefix)
            }
            scheduled: dict[str, int] = {}
            for record in self._schedules.values():
                scheduled[record.queue] = scheduled.get(record.queue, 0) + 1
            for queue in sorted(set(by_consumer) | set(waiting) | set(scheduled)):
                consumer = by_consumer.get(queue)
                stats = QueueStats(
                    name=queue,
                    pending=(consumer.num_pending or 0) if consumer else waiting.get(queue, 0),
                    running=(consumer.num_ack_pending or 0) if consumer else 0,
                    scheduled=scheduled.get(queue, 0),
                    completed=max(
                        0,
                        (
                            (consumer.ack_floor.consumer_seq or 0)
                            if consumer and consumer.ack_floor
                            else 0
                        )
                        - failed_by_queue.get(queue, 0),
                    ),
                    failed=failed_by_queue.get(queue, 0),
                    paused=bool(consumer and getattr(consumer, "paused", False)),
                    rate=round(
                        _rate((broker.settings.prefix, queue), delivered_so_far(consumer)), 2
                    )
                    if consumer
                    else 0.0,
                )
                if self._queues.get(queue) != stats:
                    self._queues[queue] = stats
                    self._emit("queue", queue, stats)
            now = time.time()
            for name, record in list(self._workers.items()):
                if now - record.heartbeat_at > record.ttl:
                    # Heartbeats expire without a delete marker: drop the dead worker here.
                    del self._workers[name]
                    self._emit("worker", name, None)
            total = sum(failed_by_queue.values())
            if total != failed_total:
                failed_total = total
                await self._sync_failed(broker)
            await asyncio.sleep(STATS_INTERVAL)
