"""Operator actions on jobs and workers: cancel a job, stop a worker."""

from __future__ import annotations

from naq.broker import Broker
from naq.dependencies import job_ended
from naq.errors import NaqConnectionError
from naq.models import JobStatus
from naq.names import validate_job_id
from naq.results import job_not_found, resolve_settings
from naq.schedules import ScheduleStore
from naq.settings import Settings
from naq.store import JobStore
from naq.sync import sync_twin


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
        await store.unpark(job_id)
    return True


cancel_job_sync = sync_twin(cancel_job)


async def stop_worker(
    name: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Ask worker ``name`` to stop gracefully (as SIGTERM would).

    Returns True once the worker acknowledged; False if no worker by that name answered.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    try:
        reply = await broker.connection.request(
            broker.names.worker_control_subject(name), b"stop", timeout=3
        )
    except NaqConnectionError:
        if broker.connection.is_connected:
            return False  # no responders / no answer: no such worker
        raise
    return reply.data == b"stopping"


stop_worker_sync = sync_twin(stop_worker)
