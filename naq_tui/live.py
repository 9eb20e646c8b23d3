"""The real service: :class:`naq.feed.Feed` and the metrics for what to show, the
library's functions for what to do. With :mod:`naq_tui.live_metrics`, the only modules
of the TUI that import naq's I/O."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from naq.dead_letters import delete_failed_job, delete_failed_seq, requeue_failed_job
from naq.errors import JobNotFoundError
from naq.feed import Feed, FeedEvent
from naq.jobs import cancel_job, get_job
from naq.limits import QueueLimits
from naq.queue import Queue
from naq.settings import Settings, get_settings
from naq_tui.live_metrics import READ_SECONDS, MetricsReader
from naq_tui.service import (
    Attempt,
    Change,
    Connection,
    FailedRow,
    JobDetail,
    JobRow,
    QueueRow,
    Remove,
    Sampling,
    ScheduleRow,
    Upsert,
    WorkerRow,
)

R = TypeVar("R")

log = logging.getLogger("naq_tui.live")

_HINT = "start one with 'naq server' or pass --nats-url; retrying"


def to_change(event: FeedEvent, url: str) -> Change:
    """A feed event as a TUI change."""
    value = event.value
    if event.kind == "connection":
        detail = value or ""
        if event.key == "disconnected":
            detail = f"{detail} ({_HINT})" if detail else _HINT
        return Connection(event.key, url, detail)
    if event.kind == "sampling" and value is None:
        return Sampling()
    if value is None:
        return Remove(event.kind, event.key)
    if event.kind == "queue":
        return Upsert(project(QueueRow, value))
    if event.kind == "worker":
        return Upsert(
            project(
                WorkerRow,
                value,
                queues=tuple(value.queues),
                running=tuple(value.running),
            )
        )
    if event.kind == "schedule":
        return Upsert(project(ScheduleRow, value))
    if event.kind == "job":
        return Upsert(project(JobRow, value))
    if event.kind == "sampling":
        return Sampling(every=value.every, rate=value.rate)
    return Upsert(project(FailedRow, value, key=event.key))


def project(row_type: type[R], record: Any, **values: Any) -> R:
    """A TUI row from a library record: every field of the row taken by name from the record,
    unless given in ``values``."""
    for field in dataclasses.fields(row_type):  # type: ignore[arg-type]
        if field.name not in values:
            values[field.name] = getattr(record, field.name)
    return row_type(**values)


def attempt(entry: dict[str, Any]) -> Attempt:
    """One entry of ``JobInfo.attempts_log`` as an :class:`Attempt`."""
    return Attempt(
        number=int(entry.get("attempt") or 0),
        worker=entry.get("worker"),
        started_at=entry.get("started_at"),
        ended_at=entry.get("ended_at"),
        error_type=entry.get("error_type"),
        error=entry.get("error"),
    )


class _Failed:
    """Put on the change queue when the feed fails: :meth:`LiveService.changes` raises it."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class LiveService:
    """The service the TUI uses against a real NATS server."""

    def __init__(self, settings: Settings | None = None, nats_url: str | None = None) -> None:
        self.settings = (settings or get_settings()).replace(nats_url=nats_url)
        self.url = ",".join(self.settings.servers)
        self._feed: Feed | None = None
        self._job_filter = ""

    def now(self) -> float:
        """The wall clock."""
        return time.time()

    async def changes(self) -> AsyncIterator[Change]:
        """Every row, then every change (see :class:`naq.feed.Feed`), and every few
        seconds the metrics (see :class:`~naq_tui.live_metrics.MetricsReader`)."""
        out: asyncio.Queue[Change | _Failed] = asyncio.Queue()
        reader = MetricsReader(self.settings, self.now)
        tasks = [
            asyncio.create_task(self._follow_feed(out, reader)),
            asyncio.create_task(self._read_metrics(out, reader)),
        ]
        try:
            while True:
                item = await out.get()
                if isinstance(item, _Failed):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            for task in tasks:
                task.cancel()
            # The feed closes its NATS connection as it ends: wait for it.
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow_feed(
        self, out: asyncio.Queue[Change | _Failed], reader: MetricsReader
    ) -> None:
        try:
            self._feed = Feed(self.settings)
            self._feed.set_job_filter(self._job_filter)
            async for event in self._feed.events():
                change = to_change(event, self.url)
                reader.saw(change)
                out.put_nowait(change)
        except Exception as exc:
            out.put_nowait(_Failed(exc))
        else:
            out.put_nowait(_Failed(None))

    async def _read_metrics(
        self, out: asyncio.Queue[Change | _Failed], reader: MetricsReader
    ) -> None:
        while True:
            try:
                changes = await reader.read()
            except Exception as exc:  # metrics are extra: the panes go on without them
                log.warning("tui: reading metrics failed: %r", exc)
                changes = []
            for change in changes:
                out.put_nowait(change)
            await asyncio.sleep(READ_SECONDS)

    def set_job_filter(self, text: str) -> None:
        """Have the feed send every job change matching ``text``, sampling or not."""
        self._job_filter = text
        if self._feed is not None:
            self._feed.set_job_filter(text)

    async def job_detail(self, job_id: str) -> JobDetail:
        """A job's full detail, its attempts included."""
        info = await get_job(job_id, settings=self.settings)
        fields: dict[str, Any] = {
            name: getattr(info, name)
            for name in JobDetail.__dataclass_fields__
            if hasattr(info, name) and name != "attempts"
        }
        return JobDetail(**fields, attempts=tuple(attempt(entry) for entry in info.attempts_log))

    def _queue(self, name: str) -> Queue:
        return Queue(name, settings=self.settings)

    async def pause_queue(self, queue: str) -> None:
        """Pause a queue."""
        await self._queue(queue).pause()

    async def resume_queue(self, queue: str) -> None:
        """Resume a queue."""
        await self._queue(queue).resume()

    async def purge_queue(self, queue: str) -> int:
        """Remove a queue's pending jobs."""
        return await self._queue(queue).purge()

    async def set_limits(
        self, queue: str, concurrency: int | None, rate: str | None
    ) -> QueueLimits:
        """Limit a queue over all its workers (None: no limit)."""
        return await self._queue(queue).set_limits(concurrency=concurrency, rate=rate)

    async def pause_schedule(self, job_id: str) -> bool:
        """Pause a schedule."""
        return await self._queue(self.settings.default_queue).pause_scheduled_job(job_id)

    async def resume_schedule(self, job_id: str) -> bool:
        """Resume a schedule."""
        return await self._queue(self.settings.default_queue).resume_scheduled_job(job_id)

    async def cancel_schedule(self, job_id: str) -> bool:
        """Delete a schedule."""
        return await self._queue(self.settings.default_queue).cancel_scheduled_job(job_id)

    async def reschedule(
        self,
        job_id: str,
        *,
        cron: str | None = None,
        interval: float | None = None,
        next_run: float | None = None,
    ) -> bool:
        """Change a schedule's cron, interval or next run."""
        updates: dict[str, Any] = {}
        if cron is not None:
            updates["cron"] = cron
        if interval is not None:
            updates["interval"] = interval
        if next_run is not None:
            updates["scheduled_timestamp_utc"] = next_run
        queue = self._queue(self.settings.default_queue)
        return await queue.modify_scheduled_job(job_id, **updates)

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a job."""
        return await cancel_job(job_id, settings=self.settings)

    async def requeue_failed(self, job_ids: list[str]) -> int:
        """Requeue dead letters by job id."""
        done = 0
        for job_id in job_ids:
            if await requeue_failed_job(job_id, settings=self.settings):
                done += 1
        return done

    async def delete_failed(self, keys: list[str]) -> int:
        """Delete dead letters by key (job id, or ``#seq`` for letters without one)."""
        done = 0
        for key in keys:
            try:
                if key.startswith("#"):
                    deleted = await delete_failed_seq(int(key[1:]), settings=self.settings)
                else:
                    deleted = await delete_failed_job(key, settings=self.settings)
            except JobNotFoundError:
                deleted = False
            done += int(deleted)
        return done
