"""Job dependencies: a job waits, parked, until every job it depends on has
completed; it is released by whoever notices the last one end.

Whoever ends a job (a worker storing its outcome, a worker given a job that had
ended already, a cancellation, a purge) calls :func:`job_ended` before it lets go
of the job (before the ack, for a worker): it settles the jobs parked on it, so a
crash anywhere before that point is followed by someone else doing it again.
Settling publishes the released job first (its message id makes a repeat a no-op)
and only then removes its parked record with compare-and-set; a job whose
dependency failed, was cancelled or went missing fails, naming the culprit, and so
do its own dependents.
"""

from __future__ import annotations

import logging

from naq.errors import ConfigurationError
from naq.models import JobStatus, StatusRecord, WaitingJob
from naq.store import JobStore

log = logging.getLogger("naq.dependencies")

#: Outcome of a dependency whose records expired or were never written.
MISSING = "missing"


async def check_dependencies(store: JobStore, dependency_ids: list[str]) -> dict[str, str]:
    """Current outcome of each dependency.

    Raises:
        ConfigurationError: a dependency naq has no record of (named).
    """
    outcomes = {}
    for job_id in dependency_ids:
        outcome = await store.outcome_of(job_id)
        if outcome is None:
            raise ConfigurationError(f"unknown dependency {job_id!r}: no such job")
        outcomes[job_id] = outcome
    return outcomes


def blocking_failure(outcomes: dict[str, str]) -> str | None:
    """The first dependency that failed, was cancelled or went missing, if any."""
    for job_id, outcome in outcomes.items():
        if outcome in (JobStatus.FAILED, JobStatus.CANCELLED, MISSING):
            return job_id
    return None


async def hold(
    store: JobStore, waiting: WaitingJob, outcomes: dict[str, str], record: StatusRecord
) -> None:
    """Park a job until its dependencies complete, or fail it at once if one of them
    failed already (``record`` describes it should it have no status record yet)."""
    culprit = blocking_failure(outcomes)
    if culprit is not None:
        await _fail(store, waiting.job_id, culprit, outcomes[culprit], record)
        return
    await store.parking.park(waiting)
    # A dependency may have ended while this job was being parked, before its ender
    # could find it: settle the race here.
    await settle(store, waiting.job_id)


async def settle(store: JobStore, job_id: str) -> None:
    """Release a parked job whose dependencies all completed, or fail one whose
    dependency failed; leave it parked otherwise."""
    found = await store.parking.parked(job_id)
    if found is None:
        return
    waiting, revision = found
    outcomes = {dep: await store.outcome_of(dep) or MISSING for dep in waiting.waiting_on}
    culprit = blocking_failure(outcomes)
    if culprit is None and any(o != JobStatus.COMPLETED for o in outcomes.values()):
        return
    if culprit is not None:
        # Fenced by the result: done twice (after a crash) it is stored once.
        await _fail(store, job_id, culprit, outcomes[culprit])
    elif await store.outcome_of(job_id) in (JobStatus.PENDING, None):
        # Published before the parked record goes: a crash in between leaves the record,
        # and settling it again publishes the same message id, which the stream drops.
        await store.parking.release(waiting)
        log.debug("released %s", job_id)
    await store.parking.claim(job_id, revision)


async def _fail(
    store: JobStore,
    job_id: str,
    culprit: str,
    outcome: str,
    record: StatusRecord | None = None,
) -> None:
    """End ``job_id`` failed because its dependency ``culprit`` ended ``outcome``, and
    settle the jobs parked on it in turn."""
    await store.end(
        job_id,
        JobStatus.FAILED,
        error=f"dependency {culprit} {outcome}",
        error_type="DependencyFailed",
        fallback=record,
    )
    await job_ended(store, job_id)


async def job_ended(store: JobStore, job_id: str, dependents: list[str] | None = None) -> None:
    """Settle every job parked on ``job_id``, which just ended.

    ``dependents`` may be given by a caller that keeps an index of parked jobs (the
    worker); otherwise the store's index is asked.

    Raises:
        NaqException: settling one of them failed (the others were tried): the caller
            must not let go of ``job_id`` (a worker leaves it unacked, to be redone).
    """
    failure: Exception | None = None
    if dependents is None:
        dependents = (await store.parking.dependents_of(job_id)).get(job_id, [])
    for dependent in dependents:
        try:
            await settle(store, dependent)
        except Exception as exc:  # one bad record must not block the others
            log.warning("settling %s after %s ended failed: %r", dependent, job_id, exc)
            failure = failure or exc
    if failure is not None:
        raise failure
