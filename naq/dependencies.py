"""Job dependencies: a job waits, parked in the waiting bucket, until every job
it depends on has completed; it is released by those completions themselves.

Whoever ends a job (a worker, or a cancellation) calls :func:`job_ended`; it
releases the dependents whose dependencies have now all completed, and fails
(naming the culprit) those that depended on a job that failed or was
cancelled, recursively. Releasing or failing a parked job starts by deleting
its record with compare-and-set, so exactly one party does it.
"""

from __future__ import annotations

import logging
import time

from naq.broker import MSG_ID_HEADER, Broker, decode_or_none
from naq.connection import APIError, KeyValue, KeyWrongLastSequenceError
from naq.errors import ConfigurationError
from naq.models import (
    JobStatus,
    WaitingJob,
    record_encoder,
    result_decoder,
    waiting_decoder,
)
from naq.outcomes import end_job

log = logging.getLogger("naq.dependencies")


async def waiting_kv(broker: Broker) -> KeyValue:
    """The bucket of parked jobs."""
    return await broker.connection.kv(broker.names.waiting_bucket)


async def outcome_of(broker: Broker, job_id: str) -> str | None:
    """``completed``/``failed``/``cancelled`` once a job has ended; its status
    before that; None for a job naq has no record of."""
    result_entry = await broker.get_entry(await broker.results_kv(), job_id)
    result = decode_or_none(result_decoder, result_entry.value) if result_entry else None
    if result is not None:
        return str(result.status)
    status = await broker.read_status(job_id)
    return str(status.status) if status is not None else None


async def check_dependencies(broker: Broker, dependency_ids: list[str]) -> dict[str, str]:
    """Current outcome of each dependency.

    Raises:
        ConfigurationError: a dependency naq has no record of (named).
    """
    outcomes = {}
    for job_id in dependency_ids:
        outcome = await outcome_of(broker, job_id)
        if outcome is None:
            raise ConfigurationError(f"unknown dependency {job_id!r}: no such job")
        outcomes[job_id] = outcome
    return outcomes


#: Outcome of a dependency whose records expired or were never written.
MISSING = "missing"


def blocking_failure(outcomes: dict[str, str]) -> str | None:
    """The first dependency that failed, was cancelled or went missing, if any."""
    for job_id, outcome in outcomes.items():
        if outcome in (JobStatus.FAILED, JobStatus.CANCELLED, MISSING):
            return job_id
    return None


async def park(broker: Broker, waiting: WaitingJob) -> None:
    """Park a job until its dependencies complete, then settle the race with a
    dependency that ended while we were parking it."""
    kv = await waiting_kv(broker)
    waiting = WaitingJob(
        job_id=waiting.job_id,
        queue=waiting.queue,
        waiting_on=waiting.waiting_on,
        payload=waiting.payload,
        headers=waiting.headers,
        created_at=time.time(),
    )
    await kv.put(waiting.job_id, record_encoder.encode(waiting))
    await settle(broker, waiting.job_id)


async def settle(broker: Broker, job_id: str) -> None:
    """Release a parked job whose dependencies all completed, or fail one whose
    dependency failed; leave it parked otherwise."""
    kv = await waiting_kv(broker)
    entry = await broker.get_entry(kv, job_id)
    waiting = decode_or_none(waiting_decoder, entry.value) if entry else None
    if entry is None or waiting is None:
        return
    outcomes = {dep: await outcome_of(broker, dep) or MISSING for dep in waiting.waiting_on}
    culprit = blocking_failure(outcomes)
    if culprit is None and any(o != JobStatus.COMPLETED for o in outcomes.values()):
        return
    if not await _claim(kv, job_id, entry.revision):
        return  # someone else released or failed it
    if culprit is not None:
        reason = f"dependency {culprit} {outcomes[culprit]}"
        await end_job(broker, job_id, JobStatus.FAILED, error=reason, error_type="DependencyFailed")
        await job_ended(broker, job_id)
        return
    await broker.ensure_jobs_stream()
    headers = dict(waiting.headers)
    headers[MSG_ID_HEADER] = f"{job_id}:released"
    await broker.connection.publish(
        broker.names.queue_subject(waiting.queue), waiting.payload, headers
    )
    log.debug("released %s", job_id)


async def _claim(kv: KeyValue, job_id: str, revision: int) -> bool:
    try:
        await kv.delete(job_id, last=revision)
    except (KeyWrongLastSequenceError, APIError):
        return False
    return True


async def dependents_of(broker: Broker, job_id: str) -> list[str]:
    """Parked jobs waiting on ``job_id``."""
    await waiting_kv(broker)
    found = []
    for entry in await broker.read_bucket(broker.names.waiting_bucket):
        waiting = decode_or_none(waiting_decoder, entry.value)
        if waiting is not None and job_id in waiting.waiting_on:
            found.append(waiting.job_id)
    return found


async def job_ended(broker: Broker, job_id: str, dependents: list[str] | None = None) -> None:
    """Settle every job waiting on ``job_id``, which just ended (each settle reads
    every dependency's outcome itself).

    ``dependents`` may be given by a caller that keeps an index (the worker);
    otherwise the waiting bucket is read.
    """
    for dependent in dependents if dependents is not None else await dependents_of(broker, job_id):
        try:
            await settle(broker, dependent)
        except Exception as exc:  # one bad record must not block the others
            log.warning("settling %s after %s ended failed: %r", dependent, job_id, exc)
