"""A job's outcome as naq stores and shows it: the result record's codec (sealed when a
result key is set), the value or error it stands for, and :class:`JobInfo`, the
view of a job that :mod:`naq.jobs` returns.

Results live in the results bucket (first result wins), the current state of
every job in the job-status bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from naq.broker import decode_or_none
from naq.errors import (
    JobCancelledError,
    JobExecutionError,
    SecurityError,
    SerializationError,
)
from naq.models import (
    AttemptEntry,
    JobStatus,
    ResultRecord,
    SealedOutcome,
    StatusRecord,
    current_attempt,
    record_encoder,
    result_decoder,
    sealed_decoder,
)
from naq.security import seal, unseal
from naq.serialization import pickle_loads
from naq.settings import Settings, get_settings


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
    #: Every attempt, oldest first: ``{attempt, worker, started_at, ended_at, error_type,
    #: error}``. The newest is the current one (no ``ended_at`` while it runs); an attempt
    #: whose worker died while it ran has no ``ended_at`` either, and one whose worker died
    #: before its running status was written is missing.
    attempts_log: list[dict[str, Any]] = field(default_factory=list)

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
        attempts_log=attempts_log(record),
    )


def _entry(attempt: AttemptEntry) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "worker": attempt.worker,
        "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        "error_type": attempt.error_type,
        "error": attempt.error,
    }


def attempts_log(record: StatusRecord) -> list[dict[str, Any]]:
    """Every attempt a status record tells of, oldest first (see ``JobInfo.attempts_log``)."""
    log = [_entry(attempt) for attempt in record.earlier_attempts]
    current = current_attempt(record)
    if current is not None:
        log.append(_entry(current))
    return log


def attempts_with_result(log: list[dict[str, Any]], result: ResultRecord) -> list[dict[str, Any]]:
    """``log`` ending with the attempt whose outcome ``result`` is.

    The result is stored before the final status, so a status read in between is a write
    behind: its last attempt still runs (or is the one before). A result from outside a
    worker (a cancel, a purge) or of a job that never ran changes nothing.
    """
    if result.started_at is None or result.attempt < 1:
        return log
    entry = _entry(
        AttemptEntry(
            attempt=result.attempt,
            worker=result.worker,
            started_at=result.started_at,
            ended_at=result.finished_at,
            error_type=result.error_type,
            error=result.error,
        )
    )
    if log and log[-1]["attempt"] == result.attempt and log[-1]["worker"] == result.worker:
        last = log[-1]
        if last["ended_at"] is not None:
            return log  # the final status: it tells the same
        # A sealed result has no error text: the status's, if it has one, stands.
        merged = {key: last[key] if value is None else value for key, value in entry.items()}
        return [*log[:-1], merged]
    return [*log, entry]


def to_dict(info: JobInfo) -> dict[str, Any]:
    """A JobInfo as a plain dict, with its duration (for ``--json``)."""
    data = dict(info.__dict__)
    data["duration"] = info.duration
    return data
