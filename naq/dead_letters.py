"""Dead letters: jobs that failed for good or could not run, kept in the failed
stream with the reason. List them, requeue them as fresh attempts, delete them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.errors import ConfigurationError, JobNotFoundError, SerializationError
from naq.models import DeadLetter, dead_letter_decoder, decode_envelope
from naq.names import validate_job_id, validate_queue_name
from naq.results import resolve_settings
from naq.settings import Settings
from naq.store import JobStore
from naq.sync import sync_twin


@dataclass(frozen=True)
class FailedJob:
    """A dead letter as listings show it."""

    seq: int
    job_id: str | None
    queue: str
    reason: str
    failed_at: float
    function: str | None
    error: str | None
    error_type: str | None
    traceback: str | None
    attempt: int
    worker: str | None
    payload: bytes

    @classmethod
    def from_letter(cls, seq: int, letter: DeadLetter) -> FailedJob:
        """Build from the stored record and its stream sequence."""
        return cls(
            seq=seq,
            job_id=letter.job_id,
            queue=letter.queue,
            reason=letter.reason,
            failed_at=letter.failed_at,
            function=letter.function,
            error=letter.error,
            error_type=letter.error_type,
            traceback=letter.traceback,
            attempt=letter.attempt,
            worker=letter.worker,
            payload=letter.payload,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``--json`` (the payload as text where it is text)."""
        data = dict(self.__dict__)
        data["payload"] = self.payload.decode("utf-8", errors="replace")
        return data


async def _failed(broker: Broker, queue: str | None) -> list[FailedJob]:
    await broker.ensure_failed_stream()
    subject = broker.names.failed_subject(validate_queue_name(queue) if queue else "*")
    jobs = []
    for seq, data in await broker.read_stream(broker.names.failed_stream, subject):
        letter = decode_or_none(dead_letter_decoder, data)
        if letter is not None:
            jobs.append(FailedJob.from_letter(seq, letter))
    return jobs


async def list_failed_jobs(
    queue: str | None = None, *, nats_url: str | None = None, settings: Settings | None = None
) -> list[FailedJob]:
    """Dead letters of ``queue`` (all queues if None), newest first."""
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    return sorted(await _failed(broker, queue), key=lambda job: job.seq, reverse=True)


async def _find(broker: Broker, job_id: str) -> FailedJob:
    """The dead letter of ``job_id``.

    Raises:
        JobNotFoundError: there is none.
    """
    validate_job_id(job_id)
    for job in await _failed(broker, None):
        if job.job_id == job_id:
            return job
    raise JobNotFoundError(f"no failed job {job_id!r}")


async def _requeue(broker: Broker, failed: FailedJob) -> None:
    try:
        envelope = decode_envelope(failed.payload)
    except SerializationError:
        raise ConfigurationError(
            f"failed job {failed.job_id or failed.seq!r} is not a naq job ({failed.reason}); "
            "delete it instead"
        ) from None
    await JobStore(broker).requeue(envelope, failed.payload, f"{envelope.id}:requeue:{failed.seq}")
    # The dead letter goes last: a crash before leaves it to requeue again (the message
    # id drops the repeat inside the stream's duplicate window).
    await broker.delete_dead_letter(failed.seq)


async def requeue_failed_job(
    job_id: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Put a dead-lettered job back on its queue as a fresh attempt.

    Raises:
        JobNotFoundError: no dead letter for ``job_id``.
        ConfigurationError: the dead letter is not a naq job (e.g. garbage bytes).
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    await _requeue(broker, await _find(broker, job_id))
    return True


async def delete_failed_job(
    job_id: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Delete the dead letter of ``job_id``; returns True.

    Raises:
        JobNotFoundError: no dead letter for ``job_id`` (deleted or requeued already).
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    failed = await _find(broker, job_id)
    return await _delete(broker, failed.seq, job_id)


async def delete_failed_seq(
    seq: int, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Delete the dead letter at stream sequence ``seq`` (for letters without a job id).

    Raises:
        JobNotFoundError: there is no dead letter at ``seq``.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    await broker.ensure_failed_stream()
    return await _delete(broker, seq, f"#{seq}")


async def _delete(broker: Broker, seq: int, name: str) -> bool:
    deleted = await broker.delete_dead_letter(seq)
    if not deleted:  # gone since it was listed: someone else deleted or requeued it
        raise JobNotFoundError(f"no failed job {name!r}")
    return True


async def requeue_failed_jobs(
    queue: str | None = None, *, nats_url: str | None = None, settings: Settings | None = None
) -> int:
    """Requeue every dead letter of ``queue`` (all queues if None) that is a naq job.

    Returns how many were requeued; letters that are not jobs stay.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    count = 0
    for failed in await _failed(broker, queue):
        try:
            await _requeue(broker, failed)
        except ConfigurationError:
            continue
        count += 1
    return count


async def delete_failed_jobs(
    queue: str | None = None, *, nats_url: str | None = None, settings: Settings | None = None
) -> int:
    """Delete every dead letter of ``queue`` (all queues if None); returns how many."""
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    await broker.ensure_failed_stream()
    subject = broker.names.failed_subject(validate_queue_name(queue) if queue else "*")
    return await broker.purge_subject(broker.names.failed_stream, subject)


list_failed_jobs_sync = sync_twin(list_failed_jobs)
requeue_failed_job_sync = sync_twin(requeue_failed_job)
requeue_failed_jobs_sync = sync_twin(requeue_failed_jobs)
delete_failed_job_sync = sync_twin(delete_failed_job)
delete_failed_jobs_sync = sync_twin(delete_failed_jobs)
