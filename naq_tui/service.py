"""The protocol between the TUI and naq, and the rows it shows.

The app never talks to NATS: it talks to a :class:`Service`. The real one
(:mod:`naq_tui.live`) wraps :mod:`naq.feed` and the library's actions; a
fake one (:mod:`naq_tui.fake`) with fixed data and a fixed clock drives the
snapshot tests and the screenshots.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from naq.limits import QueueLimits

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
    #: Seconds the oldest pending job has waited (0.0 when nothing is pending).
    latency: float = 0.0
    #: Its limits over all its workers.
    limits: QueueLimits = field(default_factory=QueueLimits)


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
    #: The worker process's CPU use and resident memory, when its heartbeat carries them.
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    #: It shares its slots among its queues in turn; else it takes them in the order of
    #: :attr:`queues`.
    fair: bool = False


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
class FunctionRow:
    """One (queue, function) in the Metrics pane: its figures over the metrics window."""

    queue: str
    function: str
    #: Attempts that ended (any outcome), jobs completed, failed for good, retried.
    processed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    #: Execution time and time in queue, in seconds (0.0 when there is no data).
    duration_p50: float = 0.0
    duration_p95: float = 0.0
    duration_max: float = 0.0
    wait_p50: float = 0.0
    wait_p95: float = 0.0
    #: Attempts ended per bucket of the window, oldest first (for a sparkline).
    series: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        """The row's key: queue and function."""
        return f"{self.queue}/{self.function}"

    @property
    def failure_rate(self) -> float:
        """Share of the ended attempts that failed for good (0.0 to 1.0)."""
        return self.failed / self.processed if self.processed else 0.0


@dataclass(frozen=True)
class Attempt:
    """One run of a job: which worker, when, and how it ended (``error`` None: it didn't fail)."""

    number: int
    worker: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error_type: str | None = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


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
    #: Every attempt so far, oldest first.
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class QueueTrend:
    """A queue's recent depth and latency: samples evenly spaced in time, oldest first."""

    pending: tuple[int, ...] = ()
    latency: tuple[float, ...] = ()


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

    row: QueueRow | WorkerRow | ScheduleRow | JobRow | FailedRow | FunctionRow


@dataclass(frozen=True)
class Remove:
    """A row went away: ``kind`` is ``queue``, ``worker``, ``schedule``, ``job``, ``failed``
    or ``function``."""

    kind: str
    key: str


@dataclass(frozen=True)
class Series:
    """The recent history the Overview charts; each one sent replaces the one before.

    ``processed`` and ``failed`` are jobs per second, one value per ``step`` seconds,
    oldest first, the last ending at ``at``; ``queues`` maps a queue to its trend.
    """

    at: float
    step: float
    processed: tuple[float, ...] = ()
    failed: tuple[float, ...] = ()
    queues: Mapping[str, QueueTrend] = field(default_factory=dict)

    def failed_in(self, seconds: float) -> int:
        """Jobs failed in the last ``seconds`` (whole steps, rounded)."""
        steps = max(1, round(seconds / self.step)) if self.step > 0 else 0
        return round(sum(self.failed[-steps:]) * self.step) if steps else 0


@dataclass(frozen=True)
class Sampling:
    """Whether the Jobs pane shows every job change: ``every`` 0 when it does; else about
    one completed job in ``every`` is shown, of ``rate`` changes a second (running,
    retried, failed and cancelled jobs, and matches of the filter, are all shown)."""

    every: int = 0
    rate: float = 0.0

    def note(self) -> str:
        """What the screen says while sampling (empty when it is not)."""
        if not self.every:
            return ""
        return f"showing 1 in {self.every} completed ({self.rate:,.0f} changes/s)"


Change = Connection | Upsert | Remove | Series | Sampling


class Service(Protocol):
    """What the TUI needs from naq."""

    url: str

    def now(self) -> float:
        """The current time (a fixed clock in tests)."""
        ...

    def changes(self) -> AsyncIterator[Change]:
        """Every row now, then every change, forever; connection changes included.

        After a reconnect the service sends the current rows again (catching up). The
        Metrics pane's rows and the Overview's :class:`Series` come every few seconds.
        """
        ...

    async def job_detail(self, job_id: str) -> JobDetail:
        """A job's full detail (raises naq errors for unknown jobs)."""
        ...

    def set_job_filter(self, text: str) -> None:
        """The Jobs pane's filter: every job change matching it is sent, sampling or not."""
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

    async def set_limits(
        self, queue: str, concurrency: int | None, rate: str | None
    ) -> QueueLimits:
        """Give ``queue`` these limits over all its workers (None: no limit); returns them.
        Bad values raise naq's ConfigurationError, naming them."""
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
