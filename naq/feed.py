"""The live feed: everything an operator's screen shows, as one stream of changes.

The TUI's live service (``naq_tui.live``) reads it; it builds on the read models of
:mod:`naq.monitor` (queue stats, worker info), whose delivery-rate samples it shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.dead_letters import list_failed_jobs
from naq.errors import NaqException
from naq.feed_jobs import JobFollower
from naq.models import WorkerRecord, schedule_decoder, worker_decoder
from naq.monitor import QueueStats, WorkerInfo, current_queue_stats
from naq.outcome_log import outcome_counts
from naq.schedules import ScheduleInfo
from naq.settings import Settings
from naq.transport import open_connection

log = logging.getLogger("naq.feed")

#: Seconds between reads of stream and consumer counts (not watchable in NATS).
STATS_INTERVAL = 1.0


@dataclass(frozen=True)
class FeedEvent:
    """A change seen by :class:`Feed`: ``kind`` is queue, worker, schedule, job, failed,
    connection or sampling (a :class:`~naq.feed_jobs.JobSampling`, None once every job
    change is shown again); ``value`` is None when the thing went away."""

    kind: str
    key: str
    value: Any


class Feed:
    """Everything an operator's screen shows, as a stream of changes.

    Workers, schedules and dead letters come from watches (KV and stream
    consumers); jobs from the tail of the job-status history and then every
    change, or a sample of them while they come faster than a screen could show
    (:mod:`naq.feed_jobs`); queue counts and latencies from one read of stream and consumer
    state per second. ``events()`` first delivers the current state, then changes; a
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
        self._jobs: JobFollower | None = None
        self._job_filter = ""

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
            log.warning("feed: restarting watches failed: %r", exc)
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

    def set_job_filter(self, text: str) -> None:
        """Show every job change matching ``text``, even while the changes are sampled."""
        self._job_filter = text
        if self._jobs is not None:
            self._jobs.set_filter(text)

    async def _follow_jobs(self, broker: Broker) -> None:
        self._jobs = JobFollower(broker, self._emit)
        self._jobs.set_filter(self._job_filter)
        try:
            await self._jobs.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection went; a reconnect restarts the feed
            log.warning("feed: job feed stopped: %r", exc)

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
        failed_total = -1
        while True:
            scheduled: dict[str, int] = {}
            for record in self._schedules.values():
                scheduled[record.queue] = scheduled.get(record.queue, 0) + 1
            try:
                failed = await broker.subject_counts(names.failed_stream, names.failed_subject("*"))
                counts = await outcome_counts(broker)
                by_queue = await current_queue_stats(broker, scheduled=scheduled, counts=counts)
            except Exception as exc:
                log.debug("feed: reading counts failed: %r", exc)
                await asyncio.sleep(STATS_INTERVAL)
                continue
            failed_by_queue = {names.queue_from_failed_subject(s): n for s, n in failed.items()}
            for queue, stats in by_queue.items():
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
