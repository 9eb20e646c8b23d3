"""Reading and acting on jobs: where a job is looked at, waited for, listed, watched
and cancelled.

``get_job`` (status, timestamps, attempts, outcome), ``fetch_job_result`` (the value or
the error), ``wait_for_job`` (until it ends), ``list_jobs`` (newest first, from the
job history), ``watch_jobs`` (every status change as it happens) and ``cancel_job``,
each with its blocking twin. A job id naq has no record of is refused with
:class:`~naq.errors.JobNotFoundError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.dependencies import job_ended
from naq.errors import ConfigurationError, JobNotFoundError, JobTimeoutError
from naq.history import STATUSES, JobEvent, RunningSeen, newest_ended_jobs, newest_in_state
from naq.models import JobStatus, ResultRecord, StatusRecord, status_decoder
from naq.names import validate_job_id, validate_queue_name
from naq.results import (
    JobInfo,
    attempts_with_result,
    decode_result,
    info_from_status,
    raise_for_outcome,
    resolve_settings,
    result_value,
)
from naq.schedules import ScheduleStore
from naq.settings import Settings
from naq.store import JobStore
from naq.sync import sync_twin


async def _result_record(broker: Broker, job_id: str) -> ResultRecord | None:
    entry = await (await broker.results_kv()).get(job_id)
    return decode_result(broker.settings, entry.value) if entry else None


async def _result_since(broker: Broker, status: StatusRecord) -> ResultRecord | None:
    """The result of a job whose ``status`` was read after its result was found missing:
    read again if that status has ended. The result is written before the final status,
    so a job that ended in between has it now (unless it expired before its history)."""
    if status.status not in JobStatus.ENDED:
        return None
    return await _result_record(broker, status.job_id)


async def fetch_job_result(
    job_id: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> Any:
    """The return value of a finished job.

    Raises:
        JobNotFoundError: there is no outcome (yet) for ``job_id``; the message says
            whether naq knows the job at all.
        JobExecutionError: the job failed (carries the remote error and traceback).
        JobCancelledError: the job was cancelled.
        NaqConnectionError: NATS can't be reached.
    """
    settings = resolve_settings(nats_url, settings)
    validate_job_id(job_id)
    broker = await Broker.connect(settings)
    record = await _result_record(broker, job_id)
    if record is None:
        status = await broker.read_status(job_id)
        if status is None:
            raise job_not_found(job_id)
        record = await _result_since(broker, status)
        if record is None:
            if status.status in JobStatus.ENDED:
                raise JobNotFoundError(f"job {job_id!r} is {status.status}; its result expired")
            raise JobNotFoundError(f"job {job_id!r} has no result yet (it is {status.status})")
    return raise_for_outcome(record, settings)


async def _is_known(broker: Broker, job_id: str, grace: float) -> bool:
    """Whether naq has a record of ``job_id``: its status or result, or a schedule that
    runs it (a recurring schedule's later runs have no record until they are enqueued).
    Without one, its status is watched for up to ``grace`` seconds."""
    if await broker.read_status(job_id) is not None:
        return True
    if await _result_record(broker, job_id) is not None:
        return True
    if await ScheduleStore(broker).runs_job(job_id):
        return True
    return await _status_appears(broker, job_id, grace)


#: Seconds (at most the caller's timeout) an id with no record is watched for its status
#: before it is called unknown: an id handed over by another process (or a scheduler's run
#: being enqueued) may be asked about a moment before its status is stored.
STATUS_GRACE = 1.0


async def _status_appears(broker: Broker, job_id: str, within: float) -> bool:
    """Whether ``job_id`` gets a status record within ``within`` seconds (watched)."""
    async with (await broker.status_kv()).watch(job_id) as changes:

        async def first_status() -> None:
            while (await changes.next()).value is None:
                pass

        try:
            await asyncio.wait_for(first_status(), within)
        except asyncio.TimeoutError:
            return False
        return True


def job_not_found(job_id: str) -> JobNotFoundError:
    """The error for an operation on a job id naq has no record of."""
    return JobNotFoundError(f"no job {job_id!r} (never enqueued, or its record expired)")


async def wait_for_result(broker: Broker, job_id: str, timeout: float | None) -> ResultRecord:
    """Wait until ``job_id`` has a result record, watching its key.

    Raises:
        JobTimeoutError: none within ``timeout`` seconds.
    """
    async with (await broker.results_kv()).watch(job_id) as changes:

        async def first_result() -> ResultRecord:
            while True:
                change = await changes.next()
                if change.value is None:
                    continue
                record = decode_result(broker.settings, change.value)
                if record is not None:
                    return record

        try:
            return await asyncio.wait_for(first_result(), timeout)
        except asyncio.TimeoutError:
            raise JobTimeoutError(f"job {job_id!r} did not finish within {timeout:g}s") from None


async def get_job(
    job_id: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> JobInfo:
    """Status, timestamps, attempts, worker and outcome of a job.

    Raises:
        JobNotFoundError: naq has no record of ``job_id`` (never enqueued, or expired).
    """
    settings = resolve_settings(nats_url, settings)
    validate_job_id(job_id)
    info = await read_job_info(await Broker.connect(settings), job_id)
    if info is None:
        raise job_not_found(job_id)
    return info


async def read_job_info(broker: Broker, job_id: str) -> JobInfo | None:
    """What ``broker``'s buckets hold of ``job_id`` as a :class:`JobInfo`; None if nothing."""
    settings = broker.settings
    status, result = await asyncio.gather(
        broker.read_status(job_id), _result_record(broker, job_id)
    )
    if status is None and result is None:
        return None
    if result is None and status is not None:
        result = await _result_since(broker, status)
    if status is not None:
        info = info_from_status(status)
    else:
        info = JobInfo(job_id=job_id, status=JobStatus.PENDING)
    if result is not None:
        info = _with_result(info, result, settings)
    return info


def _with_result(info: JobInfo, result: ResultRecord, settings: Settings) -> JobInfo:
    from dataclasses import replace

    # The result record is written before the final status: trust it for the outcome.
    # A result still sealed (no key, or another key) leaves the value out.
    readable = result.status == JobStatus.COMPLETED and result.sealed is None
    return replace(
        info,
        status=result.status,
        result=result_value(result, settings) if readable else None,
        error=result.error,
        error_type=result.error_type,
        traceback=result.traceback,
        ended_at=info.ended_at or result.finished_at,
        started_at=info.started_at or result.started_at,
        worker=info.worker or result.worker,
        attempt=max(info.attempt, result.attempt),
        attempts_log=attempts_with_result(info.attempts_log, result),
    )


async def wait_for_job(
    job_id: str,
    timeout: float | None = None,
    *,
    nats_url: str | None = None,
    settings: Settings | None = None,
) -> JobInfo:
    """Wait until a job has ended (completed, failed for good or cancelled).

    Returns its :class:`JobInfo`; does not raise for a failed or cancelled job.

    An id naq has no record of is refused, except the id of a later run of a
    schedule that exists (``<schedule id>_<k>``): that is waited for.

    Raises:
        JobNotFoundError: naq has no record of ``job_id`` (never enqueued, or expired).
        JobTimeoutError: it did not end within ``timeout`` seconds.
    """
    settings = resolve_settings(nats_url, settings)
    validate_job_id(job_id)
    broker = await Broker.connect(settings)
    grace = STATUS_GRACE if timeout is None else min(STATUS_GRACE, timeout)
    if not await _is_known(broker, job_id, grace):
        raise job_not_found(job_id)
    await wait_for_result(broker, job_id, timeout)
    return await get_job(job_id, settings=settings)


async def job_outcome(job_id: str, timeout: float | None, settings: Settings) -> Any:
    """Wait for a job and return its value or raise its error (``Job.result``).

    Raises:
        JobTimeoutError: no outcome within ``timeout``.
        JobExecutionError: the job failed.
        JobCancelledError: the job was cancelled.
    """
    broker = await Broker.connect(settings)
    record = await wait_for_result(broker, job_id, timeout)
    return raise_for_outcome(record, settings)


fetch_job_result_sync = sync_twin(fetch_job_result)

wait_for_job_sync = sync_twin(wait_for_job)

get_job_sync = sync_twin(get_job)


def _check_filters(queue: str | None, status: str | None) -> None:
    if queue is not None:
        validate_queue_name(queue)
    if status is not None and status not in STATUSES:
        raise ConfigurationError(f"unknown job status {status!r}; use {', '.join(STATUSES)}")


async def list_jobs(
    queue: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    nats_url: str | None = None,
    settings: Settings | None = None,
) -> list[JobInfo]:
    """Jobs newest first: ended ones (completed, failed, cancelled) unless ``status``
    asks for another state; ``offset`` and ``limit`` page through them.

    Raises:
        ConfigurationError: a bad queue name, status, limit or offset (named).
    """
    _check_filters(queue, status)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit={limit!r} must be an integer >= 1")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ConfigurationError(f"offset={offset!r} must be an integer >= 0")
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    if status is None or status in JobStatus.ENDED:
        return await newest_ended_jobs(broker, queue, status, offset, limit)
    return await newest_in_state(broker, queue, status, offset, limit)


list_jobs_sync = sync_twin(list_jobs)


async def watch_jobs(
    queue: str | None = None, *, nats_url: str | None = None, settings: Settings | None = None
) -> AsyncIterator[JobEvent]:
    """Yield every job status change from now on, optionally for one queue.

    ``async for event in naq.watch_jobs("emails"): ...``; break out to stop.
    """
    _check_filters(queue, None)
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    seen_running = RunningSeen()
    async with broker.follow_statuses() as messages:
        async for msg in messages:
            record = decode_or_none(status_decoder, msg.data)
            if record is None or (queue is not None and record.queue != queue):
                continue
            if seen_running.missed(record):
                yield JobEvent.running_from(record)
            yield JobEvent.from_record(record)


async def cancel_job(
    job_id: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Cancel a job.

    A pending (or scheduled, retrying or waiting) job never runs; a running
    async job is cancelled; a running sync job is marked and its result
    discarded when its thread returns. Its status becomes ``cancelled`` and
    ``job.result()`` raises :class:`~naq.errors.JobCancelledError`. Jobs depending
    on it fail.

    Returns True, or False if the job had already ended (nothing to cancel).

    Raises:
        JobNotFoundError: naq has no record of ``job_id``.
    """
    validate_job_id(job_id)
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    store = JobStore(broker)
    if await store.read_result(job_id) is not None:
        return False
    status = await broker.read_status(job_id)
    if status is None:
        raise job_not_found(job_id)
    if status.status in JobStatus.ENDED:
        return False
    # Workers watch this bucket: a pending copy is skipped, a running one interrupted.
    await store.request_cancel(job_id)
    if status.status == JobStatus.SCHEDULED:
        await ScheduleStore(broker).cancel(job_id)
    if status.status != JobStatus.RUNNING:
        # The outcome first, then the parked record: a crash in between leaves a parked
        # job whose settling finds it ended.
        if await store.end(job_id, JobStatus.CANCELLED, error="cancelled"):
            await job_ended(store, job_id)
        await store.parking.unpark(job_id)
    return True


cancel_job_sync = sync_twin(cancel_job)
