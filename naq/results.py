"""Job outcomes and state over KV: fetch, wait (by watching, never polling), inspect.

Results live in the results bucket (first result wins), the current state of
every job in the job-status bucket. Waiting watches the job's result key, so
an outcome is seen the moment it is stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec

from naq.broker import Broker, decode_or_none
from naq.errors import (
    JobCancelledError,
    JobExecutionError,
    JobNotFoundError,
    JobTimeoutError,
    SecurityError,
    SerializationError,
)
from naq.models import (
    JobStatus,
    ResultRecord,
    SealedOutcome,
    StatusRecord,
    record_encoder,
    result_decoder,
    sealed_decoder,
)
from naq.names import validate_job_id
from naq.schedules import ScheduleStore
from naq.security import seal, unseal
from naq.serialization import pickle_loads
from naq.settings import Settings, get_settings
from naq.sync import sync_twin


@dataclass(frozen=True)
class JobInfo:
    """What naq knows about a job: its state, timings, attempts and outcome."""

    job_id: str
    status: str
    queue: str | None = None
    function: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    enqueued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    attempt: int = 0
    max_retries: int = 0
    next_retry_at: float | None = None
    worker: str | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    progress: float | None = None
    progress_message: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the job completed, failed for good or was cancelled."""
        return self.status in JobStatus.ENDED

    @property
    def duration(self) -> float | None:
        """Seconds from start to end of the last attempt, once ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


def encode_result(settings: Settings, record: ResultRecord) -> bytes:
    """The bytes stored for ``record``: its secret part sealed when a result key is set.

    Raises:
        SerializationError: the job's return value has no JSON form.
    """
    try:
        return _encode_result(settings, record)
    except (TypeError, msgspec.EncodeError) as exc:
        raise SerializationError(
            f"the job's return value of type {type(record.result).__name__} can't be stored "
            f"as JSON ({exc}); return JSON types, datetimes, bytes, dataclasses or Structs"
        ) from None


def _encode_result(settings: Settings, record: ResultRecord) -> bytes:
    if settings.result_encryption_key:
        secret = SealedOutcome(
            result=record.result,
            error=record.error,
            traceback=record.traceback,
            pickled=record.pickled,
        )
        record = msgspec.structs.replace(
            record,
            result=None,
            error=None,
            traceback=None,
            pickled=None,
            sealed=seal(settings, record_encoder.encode(secret), record.job_id),
        )
    return record_encoder.encode(record)


def decode_result(settings: Settings, data: bytes | None) -> ResultRecord | None:
    """A stored result record, unsealed when this process has the key.

    A sealed record read without the key keeps its status and timings; its
    value can't be read (:func:`result_value` raises).
    """
    record = decode_or_none(result_decoder, data)
    if record is None or record.sealed is None or not settings.result_encryption_key:
        return record
    try:
        secret = sealed_decoder.decode(unseal(settings, record.sealed, record.job_id))
    except SecurityError:
        return record  # wrong key: still sealed, and result_value says so

    return msgspec.structs.replace(
        record,
        result=secret.result,
        error=secret.error,
        traceback=secret.traceback,
        pickled=secret.pickled,
        sealed=None,
    )


def resolve_settings(nats_url: str | None = None, settings: Settings | None = None) -> Settings:
    """``settings`` (or the environment's) with ``nats_url`` applied."""
    return (settings or get_settings()).replace(nats_url=nats_url)


def result_value(record: ResultRecord, settings: Settings) -> Any:
    """The return value a result record holds (unpickled only with the pickle serializer).

    Raises:
        SecurityError: the result is encrypted and this process has no key.
    """
    if record.sealed is not None:
        unseal(settings, record.sealed, record.job_id)  # raises: no key
    if record.pickled is not None and settings.job_serializer == "pickle":
        return pickle_loads(record.pickled)
    return record.result


def raise_for_outcome(record: ResultRecord, settings: Settings) -> Any:
    """Return the job's value, or raise the error its record describes.

    Raises:
        JobCancelledError: the job was cancelled (a :class:`JobExecutionError` too).
        JobExecutionError: the job failed.
    """
    if record.status == JobStatus.COMPLETED:
        return result_value(record, settings)
    error = JobCancelledError if record.status == JobStatus.CANCELLED else JobExecutionError
    raise error(
        f"job {record.job_id} {record.status}: {record.error}",
        job_id=record.job_id,
        error=record.error,
        remote_traceback=record.traceback,
    )


async def _result_record(broker: Broker, job_id: str) -> ResultRecord | None:
    entry = await (await broker.results_kv()).get(job_id)
    return decode_result(broker.settings, entry.value) if entry else None


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
#: before it is called unknown. Enqueue writes the pending status without waiting for its
#: ack, so a read just after ``enqueue`` returned can come before the server stored it
#: (measured: about 1 read in 100); the write lands within milliseconds.
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
    broker = await Broker.connect(settings)
    status, result = await asyncio.gather(
        broker.read_status(job_id), _result_record(broker, job_id)
    )
    if status is None and result is None:
        raise job_not_found(job_id)
    if status is not None:
        info = info_from_status(status)
    else:
        info = JobInfo(job_id=job_id, status=JobStatus.PENDING)
    if result is not None:
        info = _with_result(info, result, settings)
    return info


def info_from_status(record: StatusRecord) -> JobInfo:
    """A :class:`JobInfo` from a status record alone (no result lookup)."""
    return JobInfo(
        job_id=record.job_id,
        status=record.status,
        queue=record.queue,
        function=record.function,
        args=record.args,
        kwargs=record.kwargs,
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        attempt=record.attempt,
        max_retries=record.max_retries,
        next_retry_at=record.next_retry_at,
        worker=record.worker,
        error=record.error,
        meta=record.meta,
        depends_on=record.depends_on,
        progress=record.progress,
        progress_message=record.progress_message,
    )


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
