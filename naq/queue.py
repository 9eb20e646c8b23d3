"""Queue: put jobs on a JetStream work queue, and the module-level helpers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from naq import tracing
from naq.broker import Broker, is_duplicate_result
from naq.callbacks import CALLBACK_OPTIONS
from naq.dependencies import check_dependencies, hold, job_ended
from naq.errors import ConfigurationError, NaqException
from naq.job import Job
from naq.limits import QueueLimits, check_concurrency, check_rate
from naq.models import JobStatus, ScheduleRecord, ScheduleStatus, StatusRecord, WaitingJob
from naq.monitor import QueueStats, queue_stats
from naq.names import Names, validate_job_id, validate_queue_name
from naq.schedule_manager import ScheduledJobManager
from naq.schedules import (
    ScheduleStore,
    next_cron,
    schedule_not_found,
    to_seconds,
    to_timestamp,
    validate_cron,
    validate_repeat,
)
from naq.security import job_headers
from naq.serialization import task_info
from naq.settings import Settings, get_settings
from naq.store import JobStore
from naq.sync import sync_twin
from naq.transport import PubAck, PublishError

log = logging.getLogger("naq.queue")
#: A batch enqueue lets the loop write what it has queued every this many messages, so the
#: server stores the first ones while the rest are still being encoded.
SEND_SLICE = 64

#: A limit :meth:`Queue.set_limits` was not given: it stays as it is.
UNCHANGED: Any = object()

#: A paused queue's consumer is paused until this time (resume ends it early).
PAUSED_UNTIL = "2999-12-31T00:00:00Z"

#: Job options accepted as keywords by ``enqueue`` and taken out of the function's kwargs.
JOB_OPTIONS = frozenset(
    {
        "timeout",
        "result_ttl",
        "retry_strategy",
        "retry_jitter",
        "retry_on",
        "ignore_on",
        "job_id",
        "meta",
        "max_retries",
        "retry_delay",
        "depends_on",
        *CALLBACK_OPTIONS,
    }
)


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``enqueue``'s keywords into (job options, the function's own kwargs)."""
    options = {k: kwargs[k] for k in kwargs.keys() & JOB_OPTIONS}
    call_kwargs = {k: v for k, v in kwargs.items() if k not in JOB_OPTIONS}
    return options, call_kwargs


def given(**options: Any) -> dict[str, Any]:
    """The options the caller actually passed (None means "not given": a task's
    registered defaults, then naq's, apply)."""
    return {name: value for name, value in options.items() if value is not None}


def pending_status(job: Job) -> StatusRecord:
    """The status record written when ``job`` is enqueued."""
    return StatusRecord(
        job_id=job.job_id,
        status=JobStatus.PENDING,
        queue=job.queue_name,
        function=job.function_ref,
        enqueued_at=job.enqueue_time,
        updated_at=job.enqueue_time,
        max_retries=job.max_retries,
        args=list(job.args) if job._settings.job_serializer == "json" else [],
        kwargs=job.kwargs if job._settings.job_serializer == "json" else {},
        meta=job.meta,
        depends_on=job.dependency_ids,
    )


class Queue:
    """A named job queue on the jobs stream.

    ``Queue(name, nats_url=None, default_timeout=None)``; use it as an async
    context manager or call :meth:`close` (which never closes the connection
    other users share).

    Raises:
        InvalidQueueNameError: ``name`` is not letters, digits, ``-`` or ``_``.
    """

    def __init__(
        self,
        name: str | None = None,
        nats_url: str | None = None,
        default_timeout: float | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.settings = (settings or get_settings()).replace(nats_url=nats_url)
        self.name = validate_queue_name(name or self.settings.default_queue)
        if default_timeout is not None and (
            isinstance(default_timeout, bool)
            or not isinstance(default_timeout, (int, float))
            or default_timeout <= 0
        ):
            raise ConfigurationError(f"default_timeout={default_timeout!r} must be > 0 seconds")
        self.default_timeout = default_timeout
        self._brokers: dict[int, Broker] = {}

    def __repr__(self) -> str:
        return f"Queue(name={self.name!r}, nats_url={self.settings.nats_url!r})"

    @property
    def subject(self) -> str:
        """The subject this queue's jobs are published to."""
        return self._names.queue_subject(self.name)

    @property
    def stream_name(self) -> str:
        """The JetStream stream that holds this queue's jobs (every queue shares it)."""
        return self._names.jobs_stream

    @property
    def _names(self) -> Names:
        return Names(self.settings.prefix)

    @property
    def _scheduled_job_manager(self) -> ScheduledJobManager:
        """This queue's schedules as a :class:`ScheduledJobManager` (the original API's)."""
        return ScheduledJobManager(self.name, settings=self.settings)

    async def __aenter__(self) -> Queue:
        await self._broker()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Forget this queue's handle on the shared connection (the connection stays open)."""
        self._brokers.clear()

    async def _broker(self) -> Broker:
        loop_id = id(asyncio.get_running_loop())
        broker = self._brokers.get(loop_id)
        if broker is None or broker.connection.is_closed:
            broker = await Broker.connect(self.settings)
            await broker.ensure_jobs_stream()
            self._brokers[loop_id] = broker
        return broker

    # -- enqueue -----------------------------------------------------------

    def make_job(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Job:
        """Build (and validate) a job for this queue without enqueueing it."""
        merged: dict[str, Any] = {}
        info = task_info(func)
        if info is not None:
            merged.update(info.options)
        merged.update(options or {})
        unknown = set(merged) - JOB_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        given_options = tuple(merged)
        if self.default_timeout is not None:
            merged.setdefault("timeout", self.default_timeout)
        return Job(
            func,
            args,
            kwargs,
            queue_name=self.name,
            settings=self.settings,
            options_given=given_options,
            **merged,
        )

    async def enqueue(
        self,
        func: Callable[..., Any] | str,
        *args: Any,
        max_retries: int | None = None,
        retry_delay: float | Sequence[float] | None = None,
        depends_on: Any = None,
        **kwargs: Any,
    ) -> Job:
        """Enqueue ``func(*args, **kwargs)`` and return its :class:`Job`.

        Job options (``timeout``, ``result_ttl``, ``retry_strategy``,
        ``retry_jitter``, ``retry_on``, ``ignore_on``, ``job_id``, ``meta``) are
        taken out of ``kwargs``; use :meth:`enqueue_call` when the function has
        parameters with those names. Enqueueing a ``job_id`` that exists runs
        it once.

        Raises:
            ConfigurationError, SerializationError: bad options or arguments.
            NaqConnectionError: NATS can't be reached.
        """
        options, call_kwargs = split_options(kwargs)
        options.update(
            given(max_retries=max_retries, retry_delay=retry_delay, depends_on=depends_on)
        )
        return await self.enqueue_call(func, args, call_kwargs, **options)

    async def enqueue_call(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Enqueue ``func`` with its arguments given explicitly and job ``options``."""
        if not isinstance(args, (list, tuple)):
            raise ConfigurationError(f"args={args!r} must be a list or tuple")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ConfigurationError(f"kwargs={kwargs!r} must be a dict")
        job = self.make_job(func, args, kwargs, options)
        jobs = await self._publish([job], caller_chose_ids="job_id" in options)
        return jobs[0]

    async def enqueue_many(self, calls: Iterable[Sequence[Any]]) -> list[Job]:
        """Enqueue many calls at once, pipelined (far faster than a loop of ``enqueue``).

        Each call is ``(func, args, kwargs)`` with an optional fourth element,
        a dict of job options. Every call is validated before any is sent.
        """
        jobs = []
        chose_ids = False
        for index, call in enumerate(calls):
            if not isinstance(call, (list, tuple)) or not 1 <= len(call) <= 4:
                raise ConfigurationError(
                    f"call {index} must be (func, args, kwargs[, options]), got {call!r}"
                )
            func, args, kwargs, options = (list(call) + [(), None, None])[:4]
            options = dict(options or {})
            chose_ids = chose_ids or "job_id" in options
            jobs.append(self.make_job(func, args or (), kwargs, options))
        return await self._publish(jobs, caller_chose_ids=chose_ids)

    async def _publish(self, jobs: list[Job], *, caller_chose_ids: bool) -> list[Job]:
        tracing.configure()  # once per call, not per job: the headers below check its answer
        broker = await self._broker()
        store = JobStore(broker)
        connection = broker.connection
        # Dependencies are checked before anything is sent: an unknown id refuses the batch.
        dependency_outcomes = {
            job.job_id: await check_dependencies(store, job.dependency_ids)
            for job in jobs
            if job.dependency_ids
        }
        to_send = jobs
        # Readers must find a job once enqueue returns (get_job right after): the last
        # status write is acknowledged with the job messages, and the bucket stores a
        # connection's writes in order, so every earlier one is stored too.
        stored: list[asyncio.Future[PubAck]] = []
        if caller_chose_ids:
            # A caller-chosen id that naq already knows is a duplicate: the
            # status create is the fence, so the same id runs once even after
            # the stream's duplicate window.
            creates = [await store.create_pending(pending_status(job)) for job in jobs]
            outcomes = await connection.wait_acks(creates)
            to_send = []
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, PubAck):
                    to_send.append(job)
                elif is_duplicate_result(outcome):
                    log.info("job %s exists already; not enqueued again", job.job_id)
                else:
                    raise self._publish_failure(outcome)
        else:
            # Not acknowledged: the job message below is what must be stored; its status
            # record only tells readers it waits, and the worker's writes follow it.
            for index, job in enumerate(jobs[:-1], start=1):
                await store.post_pending(pending_status(job))
                if index % SEND_SLICE == 0:
                    await asyncio.sleep(0)
            if jobs:
                stored.append(await store.put_pending(pending_status(jobs[-1])))
        ready = []
        held = []
        for job in to_send:
            outcomes_of_deps = dependency_outcomes.get(job.job_id, {})
            if all(o == JobStatus.COMPLETED for o in outcomes_of_deps.values()):
                ready.append(job)
            else:
                held.append(job)
        subject = self.subject
        job_futures = []
        for index, job in enumerate(ready, start=1):
            payload = job.serialize()
            # A caller-chosen id doubles as the message id, so a repeat inside the stream's
            # duplicate window is dropped there too; a fresh uuid can never repeat, and
            # leaving it out spares the server a deduplication entry per job.
            headers = job_headers(self.settings, job.job_id if caller_chose_ids else None, payload)
            job_futures.append(connection.publish_nowait(subject, payload, headers))
            if index % SEND_SLICE == 0:
                await asyncio.sleep(0)
        outcomes = await connection.wait_acks(job_futures + stored)
        for outcome in outcomes[: len(job_futures)]:
            if isinstance(outcome, BaseException):
                raise self._publish_failure(outcome)
        for outcome in outcomes[len(job_futures) :]:
            if isinstance(outcome, BaseException):  # the job stands; its status may lag
                log.warning("queue %r: a pending status was not stored: %s", self.name, outcome)
        for job in held:
            payload = job.serialize()
            waiting = WaitingJob(
                job_id=job.job_id,
                queue=self.name,
                waiting_on=job.dependency_ids,
                payload=payload,
                headers=job_headers(self.settings, job.job_id, payload),
            )
            await hold(store, waiting, dependency_outcomes[job.job_id], pending_status(job))
        return jobs

    def _publish_failure(self, exc: BaseException) -> NaqException:
        if isinstance(exc, NaqException) and not isinstance(exc, PublishError):
            return exc
        return NaqException(f"queue {self.name!r}: JetStream refused the job: {exc}")

    # -- scheduling ------------------------------------------------------------

    async def _store(self) -> ScheduleStore:
        return ScheduleStore(await self._broker())

    async def _add_schedule(self, job: Job, next_run: float, **schedule: Any) -> Job:
        record = ScheduleRecord(
            schedule_id=job.job_id,
            queue=self.name,
            job=job.to_envelope(),
            next_run=next_run,
            created_at=time.time(),
            **schedule,
        )
        store = await self._store()
        if job.dependency_ids:
            # Refused now, not when it comes due: an unknown id is a mistake to report here.
            await check_dependencies(JobStore(store.broker), job.dependency_ids)
        if not await store.add(record):
            raise ConfigurationError(f"a scheduled job with id {job.job_id!r} exists already")
        status = msgspec.structs.replace(pending_status(job), status=JobStatus.SCHEDULED)
        await JobStore(store.broker).scheduled(status)
        return job

    async def enqueue_at(
        self,
        dt: datetime | float,
        func: Callable[..., Any] | str,
        *args: Any,
        max_retries: int | None = None,
        retry_delay: float | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Enqueue ``func`` at ``dt`` (a datetime; a naive one is taken as UTC).

        The returned job's id is the schedule's id (for ``cancel_scheduled_job``
        and friends) and the id of the job when it runs.
        """
        options, call_kwargs = split_options(kwargs)
        options.update(given(max_retries=max_retries, retry_delay=retry_delay))
        job = self.make_job(func, args, call_kwargs, options)
        return await self._add_schedule(job, to_timestamp(dt, "dt"))

    async def enqueue_in(
        self,
        delta: timedelta | float,
        func: Callable[..., Any] | str,
        *args: Any,
        max_retries: int | None = None,
        retry_delay: float | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Enqueue ``func`` after ``delta`` (a timedelta or seconds, not negative)."""
        seconds = to_seconds(delta, "delta")
        return await self.enqueue_at(
            time.time() + seconds,
            func,
            *args,
            max_retries=max_retries,
            retry_delay=retry_delay,
            **kwargs,
        )

    async def schedule(
        self,
        func: Callable[..., Any] | str,
        *args: Any,
        cron: str | None = None,
        interval: timedelta | float | None = None,
        repeat: int | None = None,
        timezone: str | None = None,
        next_interval: str | None = None,
        max_retries: int | None = None,
        retry_delay: float | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Run ``func`` repeatedly: on a ``cron`` expression (in ``timezone``, default
        UTC), every ``interval`` (first run one interval from now), or when a
        registered ``next_interval`` function says; ``repeat`` runs in all
        (None: forever).

        Raises:
            ConfigurationError: a bad cron string, interval, repeat or timezone (named).
        """
        kinds = [
            name
            for name, v in (
                ("cron", cron),
                ("interval", interval),
                ("next_interval", next_interval),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            raise ConfigurationError(
                "schedule() needs exactly one of cron, interval or next_interval"
            )
        repeat = validate_repeat(repeat)
        options, call_kwargs = split_options(kwargs)
        if options.get("depends_on") is not None:
            raise ConfigurationError(
                "schedule() can't take depends_on: every run of a recurring schedule would "
                "wait on the same jobs; use enqueue_at/enqueue_in for one delayed run"
            )
        options.update(given(max_retries=max_retries, retry_delay=retry_delay))
        job = self.make_job(func, args, call_kwargs, options)
        now = time.time()
        if cron is not None:
            validate_cron(cron, timezone)
            return await self._add_schedule(
                job, next_cron(cron, timezone, now), cron=cron, timezone=timezone, repeat=repeat
            )
        if interval is not None:
            seconds = to_seconds(interval, "interval")
            if seconds <= 0:
                raise ConfigurationError(f"interval={interval!r} must be > 0")
            return await self._add_schedule(job, now + seconds, interval=seconds, repeat=repeat)
        if not isinstance(next_interval, str) or not next_interval:
            raise ConfigurationError(f"next_interval={next_interval!r} must be a registered name")
        return await self._add_schedule(job, now, next_interval=next_interval, repeat=repeat)

    async def cancel_scheduled_job(self, job_id: str) -> bool:
        """Delete a schedule; returns True.

        Raises:
            JobNotFoundError: no schedule has this id (cancelled already, or never made).
        """
        if not await (await self._store()).cancel(validate_job_id(job_id)):
            raise schedule_not_found(job_id)
        return True

    async def pause_scheduled_job(self, job_id: str) -> bool:
        """Pause a schedule; ``False`` if it is paused already.

        Raises:
            JobNotFoundError: no schedule has this id.
        """
        store = await self._store()
        return await store.set_status(validate_job_id(job_id), ScheduleStatus.PAUSED)

    async def resume_scheduled_job(self, job_id: str) -> bool:
        """Resume a paused (or failed) schedule; ``False`` if it is active already.

        Raises:
            JobNotFoundError: no schedule has this id.
        """
        store = await self._store()
        return await store.set_status(validate_job_id(job_id), ScheduleStatus.ACTIVE)

    async def modify_scheduled_job(self, job_id: str, **updates: Any) -> bool:
        """Change a schedule's ``cron``, ``interval``, ``repeat``, ``timezone`` or
        ``scheduled_timestamp_utc`` (next run).

        Raises:
            JobNotFoundError: no schedule has this id.
            ConfigurationError: an unsupported field or a bad value.
        """
        return await (await self._store()).modify(validate_job_id(job_id), **updates)

    # -- pause, resume, stats ------------------------------------------------

    async def pause(self) -> None:
        """Stop every worker of this queue from taking its jobs (enqueueing goes on).

        The pause lives on the queue's consumer in JetStream, so it survives
        worker restarts and every worker and the TUI see it.
        """
        broker = await self._broker()
        await broker.pause_queue(self.name, PAUSED_UNTIL)

    async def resume(self) -> None:
        """Let workers take this queue's jobs again."""
        broker = await self._broker()
        await broker.resume_queue(self.name)

    async def stats(self) -> QueueStats:
        """Pending, running, scheduled, completed, failed, paused and recent rate."""
        return await queue_stats(await self._broker(), self.name)

    stats_sync = sync_twin(stats)

    # -- limits --------------------------------------------------------------

    async def limits(self) -> QueueLimits:
        """This queue's limits across all its workers (:class:`~naq.limits.QueueLimits`)."""
        return await (await self._broker()).queue_limits(self.name)

    limits_sync = sync_twin(limits)

    async def set_limits(
        self, *, concurrency: Any = UNCHANGED, rate: Any = UNCHANGED
    ) -> QueueLimits:
        """Limit this queue over all its workers, on every machine; returns its limits.

        ``concurrency=N``: at most N of its jobs run at the same time, whatever each
        worker's own concurrency. ``rate="20/s"`` (or ``/m``, ``/h``): job starts stay within
        it, with a burst of at most one second's worth; jobs beyond it wait pending. ``None``
        removes a limit; one not given stays as it is. Limits live on the queue's consumer
        in JetStream: they survive worker restarts, and running workers follow a change.

        Raises:
            ConfigurationError: a bad value (named in the message).
        """
        # Checked before anything is read or written; the limits not given are kept.
        given: dict[str, Any] = {}
        if concurrency is not UNCHANGED:
            given["concurrency"] = check_concurrency(concurrency)
        if rate is not UNCHANGED:
            given["rate"] = check_rate(rate)

        def change(current: QueueLimits) -> QueueLimits:
            return dataclasses.replace(current, **given)

        return await (await self._broker()).set_queue_limits(self.name, change)

    set_limits_sync = sync_twin(set_limits)

    # -- maintenance -------------------------------------------------------

    async def purge(self) -> int:
        """Remove every pending job of this queue; returns how many were removed.

        Each purged job ends ``cancelled`` (its error says it was purged): waiting for
        it raises, and jobs depending on it fail.

        Raises:
            NaqConnectionError: NATS can't be reached.
        """
        store = JobStore(await self._broker())
        removed, ended = await store.purge(self.name)
        parked = await store.parking.dependents_of() if ended else {}
        for job_id in ended:
            if job_id in parked:
                await job_ended(store, job_id, parked[job_id])
        return removed


# -- module-level helpers ---------------------------------------------------


def _queue(queue_name: str | None, nats_url: str | None) -> Queue:
    return Queue(queue_name, nats_url=nats_url)


async def enqueue(
    func: Callable[..., Any] | str,
    *args: Any,
    queue_name: str | None = None,
    nats_url: str | None = None,
    max_retries: int | None = None,
    retry_delay: float | Sequence[float] | None = None,
    depends_on: Any = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``func(*args, **kwargs)`` on ``queue_name`` (see :meth:`Queue.enqueue`)."""
    return await _queue(queue_name, nats_url).enqueue(
        func,
        *args,
        max_retries=max_retries,
        retry_delay=retry_delay,
        depends_on=depends_on,
        **kwargs,
    )


enqueue_sync = sync_twin(enqueue)


async def enqueue_many(
    calls: Iterable[Sequence[Any]], *, queue_name: str | None = None, nats_url: str | None = None
) -> list[Job]:
    """Enqueue many calls at once (see :meth:`Queue.enqueue_many`)."""
    return await _queue(queue_name, nats_url).enqueue_many(calls)


enqueue_many_sync = sync_twin(enqueue_many)


async def purge_queue(queue_name: str | None = None, nats_url: str | None = None) -> int:
    """Remove every pending job of ``queue_name``; returns how many were removed."""
    return await _queue(queue_name, nats_url).purge()


purge_queue_sync = sync_twin(purge_queue)


async def enqueue_at(
    dt: datetime | float,
    func: Callable[..., Any] | str,
    *args: Any,
    queue_name: str | None = None,
    nats_url: str | None = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``func`` at ``dt`` (see :meth:`Queue.enqueue_at`)."""
    return await _queue(queue_name, nats_url).enqueue_at(dt, func, *args, **kwargs)


enqueue_at_sync = sync_twin(enqueue_at)


async def enqueue_in(
    delta: timedelta | float,
    func: Callable[..., Any] | str,
    *args: Any,
    queue_name: str | None = None,
    nats_url: str | None = None,
    **kwargs: Any,
) -> Job:
    """Enqueue ``func`` after ``delta`` (see :meth:`Queue.enqueue_in`)."""
    return await _queue(queue_name, nats_url).enqueue_in(delta, func, *args, **kwargs)


enqueue_in_sync = sync_twin(enqueue_in)


async def schedule(
    func: Callable[..., Any] | str,
    *args: Any,
    queue_name: str | None = None,
    nats_url: str | None = None,
    **kwargs: Any,
) -> Job:
    """Schedule a recurring job (see :meth:`Queue.schedule`)."""
    return await _queue(queue_name, nats_url).schedule(func, *args, **kwargs)


schedule_sync = sync_twin(schedule)


async def cancel_scheduled_job(job_id: str, nats_url: str | None = None) -> bool:
    """Delete a schedule (see :meth:`Queue.cancel_scheduled_job`)."""
    return await _queue(None, nats_url).cancel_scheduled_job(job_id)


cancel_scheduled_job_sync = sync_twin(cancel_scheduled_job)


async def pause_scheduled_job(job_id: str, nats_url: str | None = None) -> bool:
    """Pause a schedule (see :meth:`Queue.pause_scheduled_job`)."""
    return await _queue(None, nats_url).pause_scheduled_job(job_id)


pause_scheduled_job_sync = sync_twin(pause_scheduled_job)


async def resume_scheduled_job(job_id: str, nats_url: str | None = None) -> bool:
    """Resume a schedule (see :meth:`Queue.resume_scheduled_job`)."""
    return await _queue(None, nats_url).resume_scheduled_job(job_id)


resume_scheduled_job_sync = sync_twin(resume_scheduled_job)


async def modify_scheduled_job(job_id: str, nats_url: str | None = None, **updates: Any) -> bool:
    """Modify a schedule (see :meth:`Queue.modify_scheduled_job`)."""
    return await _queue(None, nats_url).modify_scheduled_job(job_id, **updates)


modify_scheduled_job_sync = sync_twin(modify_scheduled_job)
