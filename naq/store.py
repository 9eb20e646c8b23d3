"""Every transition of a job's state, in one place.

:class:`JobStore` (with its :class:`Parking`) is the only code that writes the status,
results, waiting, dependents and cancelled buckets and the outcome log. Each transition
is one method, with its TTL, its fence and the order of its writes:

- created pending (:meth:`create_pending` is fenced by the job id, :meth:`put_pending`
  and :meth:`post_pending` are not), :meth:`scheduled`, :meth:`running`, :meth:`retrying`;
- :meth:`store_outcome` (a worker's result: won, or lost to an earlier one) and
  :meth:`end` (from outside: cancelled, dependency failed, purged) — the first stored
  result is the fence, the status and the outcome log follow the winner only;
- parked on dependencies, then released or failed (:class:`Parking`, as
  ``store.parking``: ``park``, ``release``, ``claim``);
- :meth:`requeue` (from the dead letters), :meth:`purge`, :meth:`request_cancel`.

Writes are ordered so that a crash between any two leaves a state that recovers:
the record that stands for a job goes only after what replaces it is stored
(publish the released job, then delete its parked record; store the outcome, then
release dependents, then ack).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from naq import tracing
from naq.broker import (
    EXPECTED_LAST_SUBJECT_SEQ,
    MSG_ID_HEADER,
    TTL_HEADER,
    Broker,
    decode_or_none,
    is_duplicate_result,
)
from naq.models import (
    JobEnvelope,
    JobStatus,
    ResultRecord,
    StatusRecord,
    WaitingJob,
    attempts_before_next,
    decode_envelope,
    record_encoder,
    result_decoder,
    status_of,
    waiting_decoder,
)
from naq.security import job_headers
from naq.transport import Bucket, JetStreamError, PubAck

log = logging.getLogger("naq.store")

#: Jobs ended together by a purge go out in pipelined batches of this size.
END_BATCH = 256
#: What the outcome log counts besides the ended statuses: a failed job put back.
REQUEUED = "requeued"

#: Statuses whose records are also sent on a core-NATS subject (:meth:`Names.job_events_subject`):
#: what a screen must show even when it samples the status changes, because they come
#: faster than it can read (a job running, waiting to run again, failed or cancelled).
#: Pending and completed, nearly every change of a busy system, are not.
NOTABLE = frozenset({JobStatus.RUNNING, JobStatus.RETRY, JobStatus.FAILED, JobStatus.CANCELLED})


class JobStore:
    """The job-state transitions of one broker (connection, names, settings)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.connection = broker.connection
        self.settings = broker.settings
        self.names = broker.names
        #: (queue, outcome) -> outcome-log subject, made once.
        self._outcome_subjects: dict[tuple[str, str], str] = {}
        #: Set once the status and results buckets and the outcome log are known to exist:
        #: a worker's per-job writes then go out without a look at them.
        self._ready = False
        #: The waiting and dependents buckets: jobs parked on their dependencies.
        self.parking = Parking(broker)

    # -- status writes -------------------------------------------------------

    def _status_message(
        self, record: StatusRecord, ttl: int | None, *, first: bool = False
    ) -> tuple[str, bytes, dict[str, str]]:
        headers = {TTL_HEADER: str(max(1, int(ttl or self.settings.job_status_ttl)))}
        if first:
            headers[EXPECTED_LAST_SUBJECT_SEQ] = "0"
        subject = self.broker.kv_subject(self.names.status_bucket, record.job_id)
        return subject, record_encoder.encode(record), headers

    def _announce(self, record: StatusRecord, payload: bytes) -> None:
        """Send a notable status record's copy (nobody may listen: nothing waits for it)."""
        if record.status in NOTABLE:
            self.connection.post(self.names.job_events_subject(record.status), payload)

    async def _post_status(self, record: StatusRecord, ttl: int | None = None) -> None:
        # Not acknowledged: the result record is a job's outcome of record, and readers
        # (get_job, align) trust it over the status.
        if not self._ready:
            await self.prepare()
        message = self._status_message(record, ttl)
        self.connection.post(*message)
        self._announce(record, message[1])

    async def _put_status(self, record: StatusRecord, ttl: int | None = None) -> None:
        await self.broker.status_kv()
        message = self._status_message(record, ttl)
        await self.connection.wait_ack(self.connection.publish_nowait(*message))
        self._announce(record, message[1])

    async def create_pending(self, record: StatusRecord) -> asyncio.Future[PubAck]:
        """A new job's pending status, only if the job id is new (the id fence), pipelined.

        The future fails as a duplicate (:func:`~naq.broker.is_duplicate_result`) for an
        id naq knows already.
        """
        await self.broker.status_kv()
        return self.connection.publish_nowait(*self._status_message(record, None, first=True))

    async def post_pending(self, record: StatusRecord) -> None:
        """A new job's pending status, not acknowledged (its message is what must be stored)."""
        await self._post_status(record)

    async def put_pending(self, record: StatusRecord) -> asyncio.Future[PubAck]:
        """A job's pending status, acknowledged, pipelined beside its message."""
        await self.broker.status_kv()
        return self.connection.publish_nowait(*self._status_message(record, None))

    async def scheduled(self, record: StatusRecord) -> None:
        """A job waits for its due time (acknowledged)."""
        await self._put_status(record)

    async def running(self, record: StatusRecord) -> None:
        """A worker runs the job (or reports its progress), not acknowledged."""
        await self._post_status(record)

    async def retrying(self, record: StatusRecord) -> None:
        """An attempt failed and the job will run again (acknowledged before the NAK)."""
        await self._put_status(record)

    # -- outcomes --------------------------------------------------------------

    async def store_outcome(
        self, payload: bytes, record: StatusRecord, result_ttl: int | None
    ) -> bool:
        """Store a worker's outcome of ``record.job_id`` (the encoded result ``payload``)
        and its final status ``record``; whether it won.

        The result alone first: only the worker whose result was stored writes the final
        status and logs the outcome (a stale worker's late outcome must not overwrite the
        winner's). A lost race aligns the status with the winner.

        Raises:
            NaqException: the result could not be stored (leave the job unacked).
        """
        ttl = result_ttl or self.settings.default_result_ttl
        if not self._ready:
            await self.prepare()
        (outcome,) = await self.connection.wait_acks(
            [self.connection.publish_nowait(*self._result_message(record.job_id, payload, ttl))]
        )
        if isinstance(outcome, BaseException):
            if not is_duplicate_result(outcome):
                raise outcome
            await self.align(record.job_id)
            return False
        await self._post_status(record, ttl=self.settings.history_ttl(ttl))
        self._log_outcome(record.queue, record.status, record.job_id)
        return True

    def _result_message(
        self, job_id: str, payload: bytes, ttl: int
    ) -> tuple[str, bytes, dict[str, str]]:
        return (
            self.broker.kv_subject(self.names.results_bucket, job_id),
            payload,
            {TTL_HEADER: str(max(1, int(ttl))), EXPECTED_LAST_SUBJECT_SEQ: "0"},
        )

    async def end(
        self,
        job_id: str,
        status: str,
        *,
        error: str | None = None,
        error_type: str | None = None,
        fallback: StatusRecord | None = None,
    ) -> bool:
        """End ``job_id`` from outside a worker with ``status`` (cancelled, a failed
        dependency, purged) unless it has an outcome already; whether this one was stored.

        ``fallback`` describes the job when it has no status record.
        """
        if not self._ready:
            await self.prepare()
        future = await self._create_result(
            job_id,
            ResultRecord(
                job_id=job_id,
                status=status,
                finished_at=time.time(),
                error=error,
                error_type=error_type,
            ),
        )
        (outcome,) = await self.connection.wait_acks([future])
        if isinstance(outcome, BaseException):
            if is_duplicate_result(outcome):
                return False
            raise outcome
        base = await self.broker.read_status(job_id) or fallback
        if base is not None:
            now = time.time()
            record = msgspec.structs.replace(
                base,
                status=status,
                updated_at=now,
                ended_at=now,
                error=error,
                error_type=error_type,
            )
            if base.status == JobStatus.RETRY:
                # Ended while it waited to run again: its last attempt had ended, and goes
                # into the log as it was; the job has no current attempt.
                record = msgspec.structs.replace(
                    record, started_at=None, earlier_attempts=attempts_before_next(base)
                )
            await self._put_status(record, ttl=self.settings.history_ttl())
            self._log_outcome(record.queue, status, job_id)
        return True

    async def _create_result(self, job_id: str, result: ResultRecord) -> asyncio.Future[PubAck]:
        await self.broker.results_kv()
        ttl = self.settings.default_result_ttl
        return self.connection.publish_nowait(
            *self._result_message(job_id, record_encoder.encode(result), ttl)
        )

    async def align(self, job_id: str) -> None:
        """Make a job's status agree with its stored result (after a lost result race).

        The status is rebuilt from the winning result: its outcome, and the worker and
        attempt that produced it, whatever a stale worker wrote meanwhile.
        """
        result = await self.read_result(job_id)
        current = await self.broker.read_status(job_id)
        if result is None or current is None:
            return
        winner = {
            "status": result.status,
            "error": result.error,
            # A worker's outcome names who ran it; an outside one (a cancel) names nobody.
            "worker": result.worker or current.worker,
            "attempt": result.attempt or current.attempt,
            "error_type": result.error_type,
        }
        if all(getattr(current, name) == value for name, value in winner.items()):
            return  # the winner's own status (its timestamps may differ by a hair: they stand)
        record = msgspec.structs.replace(
            current,
            updated_at=time.time(),
            ended_at=result.finished_at,
            started_at=result.started_at or current.started_at,
            **winner,
        )
        await self._put_status(record, ttl=self.settings.history_ttl())

    async def read_result(self, job_id: str) -> ResultRecord | None:
        """A job's stored result record (its outcome; the value may be sealed), or None."""
        entry = await (await self.broker.results_kv()).get(job_id)
        return decode_or_none(result_decoder, entry.value) if entry else None

    async def outcome_of(self, job_id: str) -> str | None:
        """``completed``/``failed``/``cancelled`` once a job has ended; its status before
        that; None for a job naq has no record of."""
        result = await self.read_result(job_id)
        if result is not None:
            return str(result.status)
        status = await self.broker.read_status(job_id)
        return str(status.status) if status is not None else None

    async def prepare(self) -> None:
        """Make sure the status and results buckets and the outcome log exist. Done before
        an outcome's first write, not between its writes: the log's order is the order
        results were stored in."""
        await self.broker.status_kv()
        await self.broker.results_kv()
        await self.broker.ensure_outcomes_stream()
        self._ready = True

    def _log_outcome(self, queue: str, outcome: str, job_id: str) -> None:
        """One small message per ended job (counts and newest-first listings read it)."""
        subject = self._outcome_subjects.get((queue, outcome))
        if subject is None:
            subject = self._outcome_subjects[(queue, outcome)] = self.names.outcome_subject(
                queue, outcome
            )
        self.connection.post(subject, job_id.encode())

    # -- from outside: cancel, purge, requeue -----------------------------------------

    async def request_cancel(self, job_id: str) -> None:
        """Tell every worker to skip or interrupt ``job_id`` (they watch this bucket)."""
        kv = await self.broker.cancelled_kv()
        await kv.put(job_id, str(time.time()).encode())

    async def purge(self, queue: str) -> tuple[int, list[str]]:
        """Remove every pending job of ``queue``; each ends ``cancelled``, saying it was
        purged. Returns how many messages were removed, and the jobs this ended.

        The messages are read first and only those are purged (by sequence), so a job
        enqueued meanwhile stays; a purged job that had started keeps its own outcome.
        """
        broker = self.broker
        subject = self.names.queue_subject(queue)
        messages = await broker.read_queue(subject)
        if not messages:
            return 0, []
        removed = await broker.purge_subject(
            self.names.jobs_stream, subject, before=messages[-1][0] + 1
        )
        reason = f"purged from queue {queue!r}"
        envelopes: list[JobEnvelope] = []
        for _, data in messages:
            try:
                envelopes.append(decode_envelope(data))
            except Exception:  # not a job: nothing to record
                continue
        ended: list[str] = []
        for start in range(0, len(envelopes), END_BATCH):
            batch = envelopes[start : start + END_BATCH]
            stored = await asyncio.gather(
                *(
                    self.end(
                        envelope.id,
                        JobStatus.CANCELLED,
                        error=reason,
                        error_type="Purged",
                        fallback=status_of(envelope, JobStatus.PENDING),
                    )
                    for envelope in batch
                )
            )
            ended.extend(e.id for e, won in zip(batch, stored, strict=True) if won)
        return removed, ended

    async def requeue(self, envelope: JobEnvelope, payload: bytes, message_id: str) -> None:
        """Put a failed job back on its queue as a fresh attempt (``payload``: its message).

        The old result goes first, or first-result-wins would refuse the new one: a
        stream purge of the key's subject leaves no marker behind (a KV purge would,
        and the result "create" expects the subject to be empty).
        """
        broker = self.broker
        await broker.results_kv()
        await broker.purge_subject(
            f"KV_{self.names.results_bucket}",
            broker.kv_subject(self.names.results_bucket, envelope.id),
        )
        now = time.time()
        await self._put_status(
            status_of(msgspec.structs.replace(envelope, enqueued_at=now), JobStatus.PENDING)
        )
        await broker.ensure_jobs_stream()
        tracing.configure()  # looked at per requeue, as per enqueue call
        await self.connection.publish(
            self.names.queue_subject(envelope.queue),
            payload,
            job_headers(self.settings, message_id, payload),
        )
        if not self._ready:
            await self.prepare()
        self._log_outcome(envelope.queue, REQUEUED, envelope.id)


class Parking:
    """Jobs parked on their dependencies: the only writer of the waiting bucket (a parked
    job's record) and the dependents bucket (its index, ``<dependency>.<job>`` keys)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.connection = broker.connection
        self.names = broker.names

    async def waiting_kv(self) -> Bucket:
        """The bucket of parked jobs."""
        return await self.connection.kv(self.names.waiting_bucket)

    async def _dependents_kv(self) -> Bucket:
        return await self.connection.kv(self.names.dependents_bucket)

    async def park(self, waiting: WaitingJob) -> None:
        """Park a job until its dependencies end: its index entries first (so whoever
        ends a dependency finds it), then its record."""
        index = await self._dependents_kv()
        for dependency in waiting.waiting_on:
            await index.put(f"{dependency}.{waiting.job_id}", b"")
        kv = await self.waiting_kv()
        await kv.put(waiting.job_id, record_encoder.encode(waiting))

    async def parked(self, job_id: str) -> tuple[WaitingJob, int] | None:
        """A parked job's record and its revision, or None."""
        entry = await (await self.waiting_kv()).get(job_id)
        if entry is None:
            return None
        waiting = decode_or_none(waiting_decoder, entry.value)
        return (waiting, entry.revision) if waiting is not None else None

    async def dependents_of(self, job_id: str | None = None) -> dict[str, list[str]]:
        """Parked jobs by the job they wait on (only ``job_id``'s, if given), from the
        index: the server filters its subjects, nothing is scanned here."""
        await self._dependents_kv()
        prefix = self.broker.kv_subject(self.names.dependents_bucket, "")
        subjects = await self.broker.subject_counts(
            f"KV_{self.names.dependents_bucket}", prefix + (f"{job_id}.*" if job_id else ">")
        )
        found: dict[str, list[str]] = {}
        for subject in sorted(subjects):
            dependency, _, dependent = subject[len(prefix) :].partition(".")
            found.setdefault(dependency, []).append(dependent)
        return found

    async def release(self, waiting: WaitingJob) -> None:
        """Publish a parked job to its queue (its message id makes a repeat a no-op)."""
        await self.broker.ensure_jobs_stream()
        headers = dict(waiting.headers)
        headers[MSG_ID_HEADER] = f"{waiting.job_id}:released"
        await self.connection.publish(
            self.names.queue_subject(waiting.queue), waiting.payload, headers
        )

    async def claim(self, job_id: str, revision: int) -> bool:
        """Remove a parked record, compare-and-set: whether this caller removed it."""
        kv = await self.waiting_kv()
        try:
            await kv.delete(job_id, last=revision)
        except JetStreamError:  # changed since (claimed by another), or refused
            return False
        await self.broker.purge_subject(
            f"KV_{self.names.dependents_bucket}",
            self.broker.kv_subject(self.names.dependents_bucket, f"*.{job_id}"),
        )
        return True

    async def unpark(self, job_id: str) -> None:
        """Drop a parked job whatever its revision (it was cancelled)."""
        found = await self.parked(job_id)
        if found is not None:
            await self.claim(job_id, found[1])
