"""ScheduledJobManager: the schedules of one queue, as the original API's class.

A face on what naq already does: storing goes through the queue's own scheduling
(:class:`naq.Queue`), and cancel, pause, resume and modify through its methods, which
work on the schedule store (:class:`naq.schedules.ScheduleStore`, compare-and-set on
every change). Nothing here writes a record itself. ``naq.queue`` shows the class too.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from naq.errors import ConfigurationError
from naq.job import Job
from naq.models import ScheduleStatus
from naq.schedules import to_seconds, to_timestamp, validate_cron, validate_repeat
from naq.settings import Settings
from naq.transport import Bucket

if TYPE_CHECKING:
    from naq.queue import Queue

#: The statuses :meth:`ScheduledJobManager.update_job_status` sets ("failed" is the
#: scheduler's to set, after repeated failures to enqueue).
SETTABLE_STATUSES = (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED)


class ScheduledJobManager:
    """Stores and controls the delayed and recurring jobs of queue ``queue_name``.

    ``ScheduledJobManager(queue_name, nats_url=None)``. Schedule ids are unique across
    queues, so cancel, pause, resume and modify act on the schedule with that id
    whatever its queue. An unknown id raises :class:`~naq.errors.JobNotFoundError`
    naming it; an operation with nothing to do returns False (the API's rule).

    Raises:
        InvalidQueueNameError: ``queue_name`` is not letters, digits, ``-`` or ``_``.
    """

    def __init__(
        self,
        queue_name: str | None = None,
        nats_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        # Imported here: naq.queue shows this class, so it imports this module first.
        from naq.queue import Queue

        self._queue: Queue = Queue(queue_name, nats_url=nats_url, settings=settings)
        self.queue_name = self._queue.name

    def __repr__(self) -> str:
        return f"ScheduledJobManager(queue_name={self.queue_name!r})"

    async def get_kv(self) -> Bucket:
        """The scheduled-jobs bucket (``<prefix>_scheduled_jobs``), created if missing, as
        naq's :class:`~naq.transport.Bucket` (``get``, ``watch``, and writes that
        compare-and-set on a revision, with naq's errors). Its values are
        :class:`~naq.models.ScheduleRecord` JSON, keyed by schedule id; change them
        through this manager, whose writes keep the scheduler's invariants.

        Raises:
            NaqConnectionError: NATS can't be reached.
        """
        return await (await self._queue._store()).kv()

    async def store_job(
        self,
        job: Job,
        scheduled_timestamp: float | datetime,
        cron: str | None = None,
        interval_seconds: float | None = None,
        repeat: int | None = None,
    ) -> None:
        """Schedule ``job`` (made for this queue): first run at ``scheduled_timestamp``
        (UNIX seconds or a datetime; naive is UTC), then on ``cron`` or every
        ``interval_seconds`` if given, ``repeat`` runs in all (None: forever).

        The schedule's id is the job's id; the scheduler runs it like one made by
        :meth:`naq.Queue.enqueue_at` or :meth:`naq.Queue.schedule`.

        Raises:
            ConfigurationError: not a Job, a job of another queue, an id that is
                scheduled already, or a bad time, cron, interval or repeat (named).
            NaqConnectionError: NATS can't be reached.
        """
        if not isinstance(job, Job):
            raise ConfigurationError(f"job={job!r} is not a naq Job")
        if job.queue_name != self.queue_name:
            raise ConfigurationError(
                f"job {job.job_id!r} is for queue {job.queue_name!r}, not {self.queue_name!r}"
            )
        next_run = to_timestamp(scheduled_timestamp, "scheduled_timestamp")
        schedule: dict[str, Any] = {"repeat": validate_repeat(repeat)}
        if cron is not None and interval_seconds is not None:
            raise ConfigurationError("give cron or interval_seconds, not both")
        if cron is not None:
            schedule["cron"] = validate_cron(cron)
        elif interval_seconds is not None:
            seconds = to_seconds(interval_seconds, "interval_seconds")
            if seconds <= 0:
                raise ConfigurationError(f"interval_seconds={interval_seconds!r} must be > 0")
            schedule["interval"] = seconds
        elif repeat is not None:
            raise ConfigurationError(f"repeat={repeat!r} needs cron or interval_seconds")
        recurring = cron is not None or interval_seconds is not None
        if job.dependency_ids and recurring:
            raise ConfigurationError(
                f"job {job.job_id!r} has dependencies: every run of a recurring schedule "
                "would wait on the same jobs"
            )
        await self._queue._add_schedule(job, next_run, **schedule)

    async def cancel_job(self, job_id: str) -> bool:
        """Delete a schedule (its first run, not run yet, ends cancelled); returns True.

        Raises:
            JobNotFoundError: no schedule has this id.
        """
        return await self._queue.cancel_scheduled_job(job_id)

    async def update_job_status(self, job_id: str, status: str) -> bool:
        """Set a schedule's status to ``"active"`` (resume) or ``"paused"`` (pause);
        False if it has that status already.

        Raises:
            ConfigurationError: another status (named).
            JobNotFoundError: no schedule has this id.
        """
        if status == ScheduleStatus.PAUSED:
            return await self._queue.pause_scheduled_job(job_id)
        if status == ScheduleStatus.ACTIVE:
            return await self._queue.resume_scheduled_job(job_id)
        raise ConfigurationError(
            f"status={status!r} can't be set; use one of {', '.join(SETTABLE_STATUSES)}"
        )

    async def modify_job(self, job_id: str, **updates: Any) -> bool:
        """Change a schedule's ``cron``, ``interval``, ``repeat``, ``timezone`` or
        ``scheduled_timestamp_utc`` (next run); returns True.

        Raises:
            JobNotFoundError: no schedule has this id.
            ConfigurationError: an unsupported field or a bad value (named).
        """
        return await self._queue.modify_scheduled_job(job_id, **updates)
