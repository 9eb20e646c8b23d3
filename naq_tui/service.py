"""The protocol between the TUI and naq, and the rows it shows.

The app never talks to NATS: it talks to a :class:`Service`. The real one
(:mod:`naq_tui.live`) wraps :mod:`naq.feed` and the library's actions; a
fake one (:mod:`naq_tui.fake`) with fixed data and a fixed clock drives the
snapshot tests and the screenshots.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# -- rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """One queue in the Queues pane."""

    name: str
    pending: int = 0
    running: int = 0
    scheduled: int = 0
    completed: int = 0
    failed: int = 0
    paused: bool = False
    rate: float = 0.0


@dataclass(frozen=True)
class WorkerRow:
    """One worker in the Workers pane."""

    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    status: str
    concurrency: int
    running: tuple[str, ...]
    processed: int
    failed: int
    heartbeat_at: float


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule in the Scheduled pane."""

    job_id: str
    queue: str
    function: str
    status: str
    next_run: float
    cron: str | None = None
    timezone: str | None = None
    interval: float | None = None
    repeat: int | None = None
    runs: int = 0
    failures: int = 0
    last_run: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class JobRow:
    """One job in the Jobs pane (recent and running jobs)."""

    job_id: str
    queue: str
    function: str
    status: str
    attempt: int = 0
    max_retries: int = 0
    enqueued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float = 0.0
    worker: str | None = None
    error: str | None = None
    progress: float | None = None
    progress_message: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


@dataclass(frozen=True)
class FailedRow:
    """One dead letter in the Failed pane (keyed by ``key``: job id or ``#seq``)."""

    key: str
    seq: int
    job_id: str | None
    queue: str
    function: str | None
    reason: str
    error: str | None
    failed_at: float
    attempt: int = 0


@dataclass(frozen=True)
class JobDetail:
    """Everything the job detail screen shows."""

    job_id: str
    status: str
    queue: str | None = None
    function: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None
    progress_message: str | None = None
    attempt: int = 0
    max_retries: int = 0
    enqueued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    next_retry_at: float | None = None
    worker: str | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    depends_on: list[str] = field(default_factory=list)


# -- changes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """The link to NATS: ``connected``, ``reconnecting`` or ``disconnected``."""

    status: str
    url: str
    detail: str = ""


@dataclass(frozen=True)
class Upsert:
    """A row appeared or changed (rows are keyed: queue name, worker name, job id ...)."""

    row: QueueRow | WorkerRow | ScheduleRow | JobRow | FailedRow


@dataclass(frozen=True)
class Remove:
    """A row went away: ``kind`` is ``queue``, ``worker``, ``schedule``, ``job`` or ``failed``."""

    kind: str
    key: str


Change = Connection | Upsert | Remove


class Service(Protocol):
    """What the TUI needs from naq."""

    url: str

    def now(self) -> float:
        """The current time (a fixed clock in tests)."""
        ...

    def changes(self) -> AsyncIterator[Change]:
        """Every row now, then every change, forever; connection changes included.

        After a reconnect the service sends the current rows again (catching up).
        """
        ...

    async def job_detail(self, job_id: str) -> JobDetail:
        """A job's full detail (raises naq errors for unknown jobs)."""
        ...

    async def pause_queue(self, queue: str) -> None:
        """Stop workers taking ``queue``'s jobs."""
        ...

    async def resume_queue(self, queue: str) -> None:
        """Let workers take ``queue``'s jobs again."""
        ...

    async def purge_queue(self, queue: str) -> int:
        """Remove ``queue``'s pending jobs; returns how many."""
        ...

    async def pause_schedule(self, job_id: str) -> bool:
        """Pause a schedule; False if it was paused already (an unknown id raises)."""
        ...

    async def resume_schedule(self, job_id: str) -> bool:
        """Resume a schedule; False if it was active already (an unknown id raises)."""
        ...

    async def cancel_schedule(self, job_id: str) -> bool:
        """Delete a schedule (an unknown id raises)."""
        ...

    async def reschedule(
        self,
        job_id: str,
        *,
        cron: str | None = None,
        interval: float | None = None,
        next_run: float | None = None,
    ) -> bool:
        """Change a schedule's cron, interval or next run."""
        ...

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a pending or running job; False if it had ended."""
        ...

    async def requeue_failed(self, job_ids: list[str]) -> int:
        """Requeue dead letters by job id; returns how many."""
        ...

    async def delete_failed(self, keys: list[str]) -> int:
        """Delete dead letters by key (job id or ``#seq``); returns how many."""
        ...
