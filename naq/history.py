"""The job history read back: pages of the newest jobs, and the events of status changes.

:func:`naq.jobs.list_jobs` pages through jobs newest first (ended jobs by default,
from the outcome log, kept as long as their results; jobs in another state from the
tail of the status history); :func:`naq.jobs.watch_jobs` yields every status change as
it happens (pending -> running -> completed / failed / retry / cancelled).

A worker writes a job's "running" status only once the job has run
``NAQ_RUNNING_STATUS_DELAY`` seconds; a quicker job goes from pending straight to
its outcome in the bucket. Its outcome record says when it started and where, so
``watch_jobs`` reports the running state from it, in its place before the outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeGuard

from naq.broker import Broker, decode_or_none
from naq.models import JobStatus, StatusRecord, envelope_decoder, status_decoder
from naq.outcome_log import newest_ended
from naq.results import JobInfo, info_from_status

STATUSES = (
    JobStatus.PENDING,
    JobStatus.SCHEDULED,
    JobStatus.RUNNING,
    JobStatus.RETRY,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)


@dataclass(frozen=True)
class JobEvent:
    """One change of a job's status."""

    job_id: str
    status: str
    queue: str
    function: str
    attempt: int
    updated_at: float
    worker: str | None = None
    error: str | None = None
    progress: float | None = None
    progress_message: str | None = None

    @classmethod
    def from_record(cls, record: StatusRecord) -> JobEvent:
        """Build from a status record."""
        return cls(
            job_id=record.job_id,
            status=record.status,
            queue=record.queue,
            function=record.function,
            attempt=record.attempt,
            updated_at=record.updated_at,
            worker=record.worker,
            error=record.error,
            progress=record.progress,
            progress_message=record.progress_message,
        )

    @classmethod
    def running_from(cls, record: StatusRecord) -> JobEvent:
        """The running state an attempt's outcome record describes (it started at
        ``started_at`` on ``worker``), for an attempt too short to have its own."""
        return cls(
            job_id=record.job_id,
            status=JobStatus.RUNNING,
            queue=record.queue,
            function=record.function,
            attempt=record.attempt,
            updated_at=record.started_at or record.updated_at,
            worker=record.worker,
        )


#: Statuses a worker writes when an attempt ends: the record tells when that attempt started.
_ATTEMPT_ENDS = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.RETRY})


class RunningSeen:
    """Which running attempts a watcher has seen, to tell those it never saw written.

    Holds the jobs between their running status and their outcome only, and at most
    ``limit`` of them (the oldest are forgotten first: a job whose outcome never came).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._attempts: dict[str, int] = {}
        self._limit = limit

    def missed(self, record: StatusRecord) -> bool:
        """Note ``record``; whether it ends an attempt whose running status was never seen."""
        if record.status == JobStatus.RUNNING:
            self._attempts.pop(record.job_id, None)  # re-inserted as the newest
            self._attempts[record.job_id] = record.attempt
            if len(self._attempts) > self._limit:
                del self._attempts[next(iter(self._attempts))]
            return False
        seen = self._attempts.pop(record.job_id, None)
        return (
            record.status in _ATTEMPT_ENDS
            and record.started_at is not None
            and seen != record.attempt
        )


async def newest_in_state(
    broker: Broker, queue: str | None, status: str, offset: int, limit: int
) -> list[JobInfo]:
    """A page of jobs whose status is now ``status``, newest change first, from the tail
    of the status history (a key's newest record there is its current one): a page of
    recent jobs costs the same however long the history is."""
    want = offset + limit
    await broker.status_kv()
    bucket = broker.names.status_bucket
    # Jobs can only be in this state as often as their store holds records: past that,
    # reading further back finds nothing more.
    most = await _at_most(broker, queue, status)
    if most == 0:
        return []
    if most is not None and most <= LIVE_READ_MAX and status in _LIVE:
        return await _from_live_jobs(broker, queue, status, offset, want)
    enough = min(want, most) if most is not None else want

    def current(messages: list[Any]) -> list[StatusRecord]:
        seen: set[str] = set()
        found = []
        for msg in messages:  # newest first
            if msg.subject in seen:
                continue
            seen.add(msg.subject)
            if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
                continue
            record = decode_or_none(status_decoder, msg.data)
            if _is(record, queue, {status}):
                found.append(record)
        return found

    messages, _ = await broker.tail(
        f"KV_{bucket}",
        broker.kv_subject(bucket, ">"),
        lambda found: len(current(found)) >= enough,
        want,
    )
    return [info_from_status(r) for r in current(messages)[offset:want]]


#: States whose every job has a message in the jobs stream (or, pending, a parked record).
_LIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRY})
#: Up to this many live jobs, a listing of such a state reads them (one request each)
#: rather than the status history's tail, which may reach far back for an old backlog.
LIVE_READ_MAX = 5_000
#: Status records read at once.
READ_BATCH = 256


def _is(
    record: StatusRecord | None, queue: str | None, statuses: frozenset[str] | set[str]
) -> TypeGuard[StatusRecord]:
    """Whether ``record`` is of a job of ``queue`` (any, if None) in one of ``statuses``."""
    return (
        record is not None
        and record.status in statuses
        and (queue is None or record.queue == queue)
    )


async def _read_statuses(broker: Broker, ids: list[str]) -> list[StatusRecord | None]:
    """The status records of ``ids`` (None where there is none), read READ_BATCH at once."""
    records: list[StatusRecord | None] = []
    for start in range(0, len(ids), READ_BATCH):
        batch = ids[start : start + READ_BATCH]
        records += await asyncio.gather(*(broker.read_status(i) for i in batch))
    return records


async def _from_live_jobs(
    broker: Broker, queue: str | None, status: str, offset: int, want: int
) -> list[JobInfo]:
    """A page of the jobs in ``status`` among those still to run: the jobs stream's
    messages and the parked records, newest change first (cost: the live jobs)."""
    names = broker.names
    ids: list[str] = []
    for _, data in await broker.read_queue(names.queue_subject(queue or "*")):
        envelope = decode_or_none(envelope_decoder, data)
        if envelope is not None:
            ids.append(envelope.id)
    if status == JobStatus.PENDING:
        # Parked jobs are keys of the waiting bucket: its subjects name them.
        await broker.connection.kv(names.waiting_bucket)
        prefix = broker.kv_subject(names.waiting_bucket, "")
        parked = await broker.subject_counts(f"KV_{names.waiting_bucket}", prefix + ">")
        ids.extend(subject[len(prefix) :] for subject in parked)
    found = await _read_statuses(broker, list(dict.fromkeys(ids)))
    records = [r for r in found if _is(r, queue, {status})]
    records.sort(key=lambda r: (r.updated_at, r.job_id), reverse=True)
    return [info_from_status(r) for r in records[offset:want]]


async def _at_most(broker: Broker, queue: str | None, status: str) -> int | None:
    """How many jobs can be in ``status`` at most (None: no bound is known).

    Pending, running and retrying jobs each have a message in the jobs stream (a parked
    one, a record in the waiting bucket); a scheduled one has a schedule.
    """
    names = broker.names
    if status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RETRY):
        await broker.ensure_jobs_stream()
        counts = await broker.subject_counts(names.jobs_stream, names.queue_subject(queue or "*"))
        total = sum(counts.values())
        if status == JobStatus.PENDING:
            await broker.connection.kv(names.waiting_bucket)
            parked = await broker.subject_counts(
                f"KV_{names.waiting_bucket}", broker.kv_subject(names.waiting_bucket, ">")
            )
            total += sum(parked.values())
        return total
    if status == JobStatus.SCHEDULED:
        await broker.connection.kv(names.scheduled_bucket)
        schedules = await broker.subject_counts(
            f"KV_{names.scheduled_bucket}", broker.kv_subject(names.scheduled_bucket, ">")
        )
        return sum(schedules.values())
    return None


async def newest_ended_jobs(
    broker: Broker, queue: str | None, status: str | None, offset: int, limit: int
) -> list[JobInfo]:
    """A page of ended jobs, newest first, from the outcome log's tail.

    A job's entry counts only while its status still says it ended that way (a failed
    job requeued and completed since shows once, as completed).
    """
    want = offset + limit
    asked = want
    ended: list[StatusRecord] = []
    checked: set[str] = set()
    while True:
        ids, whole = await newest_ended(broker, queue, status, asked)
        unchecked = [job_id for job_id in ids if job_id not in checked]
        while len(ended) < want and unchecked:
            chunk, unchecked = unchecked[: want - len(ended)], unchecked[want - len(ended) :]
            checked.update(chunk)
            statuses = JobStatus.ENDED if status is None else {status}
            ended += [r for r in await _read_statuses(broker, chunk) if _is(r, queue, statuses)]
        if len(ended) >= want or whole:
            return [info_from_status(r) for r in ended[offset:want]]
        asked *= 2
