"""The real service: :class:`naq.feed.Feed` for what to show, the library's
functions for what to do. The only module of the TUI that imports naq's I/O."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from naq.dead_letters import delete_failed_job, delete_failed_seq, requeue_failed_job
from naq.errors import JobNotFoundError
from naq.feed import Feed, FeedEvent
from naq.jobs import cancel_job, get_job
from naq.queue import Queue
from naq.settings import Settings, get_settings
from naq_tui.service import (
    Change,
    Connection,
    FailedRow,
    JobDetail,
    JobRow,
    QueueRow,
    Remove,
    ScheduleRow,
    Upsert,
    WorkerRow,
)

R = TypeVar("R")

_HINT = "start one with 'naq server' or pass --nats-url; retrying"


def to_change(event: FeedEvent, url: str) -> Change:
    """A feed event as a TUI change."""
    value = event.value
    if event.kind == "connection":
        detail = value or ""
        if event.key == "disconnected":
            detail = f"{detail} ({_HINT})" if detail else _HINT
        return Connection(event.key, url, detail)
    if value is None:
        return Remove(event.kind, event.key)
    if event.kind == "queue":
        return Upsert(project(QueueRow, value))
    if event.kind == "worker":
        return Upsert(
            project(WorkerRow, value, queues=tuple(value.queues), running=tuple(value.running))
        )
    if event.kind == "schedule":
        return Upsert(project(ScheduleRow, value))
    if event.kind == "job":
        return Upsert(project(JobRow, value))
    return Upsert(project(FailedRow, value, key=event.key))


def project(row_type: type[R], record: Any, **values: Any) -> R:
    """A TUI row from a library record: every field of the row taken by name from the record,
    unless given in ``values``."""
    for field in dataclasses.fields(row_type):  # type: ignore[arg-type]
        if field.name not in values:
            values[field.name] = getattr(record, field.name)
    return row_type(**values)


class LiveService:
    """The service the TUI uses against a real NATS server."""

    def __init__(self, settings: Settings | None = None, nats_url: str | None = None) -> None:
        self.settings = (settings or get_settings()).replace(nats_url=nats_url)
        self.url = ",".join(self.settings.servers)

    def now(self) -> float:
        """The wall clock."""
        return time.time()

    async def changes(self) -> AsyncIterator[Change]:
        """Every row, then every change (see :class:`naq.feed.Feed`)."""
        async for event in Feed(self.settings).events():
            yield to_change(event, self.url)

    async def job_detail(self, job_id: str) -> JobDetail:
        """A job's full detail."""
        info = await get_job(job_id, settings=self.settings)
        fields: dict[str, Any] = {
            name: getattr(info, name)
            for name in JobDetail.__dataclass_fields__
            if hasattr(info, name)
        }
        return JobDetail(**fields)

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
