"""Scheduler: enqueues delayed and recurring jobs when they are due.

Several schedulers may run; one leads, holding a lease in the lock bucket
(KV ``create``, renewed with ``update(last=revision)``; the bucket's TTL ends
the lease of a leader that stops renewing). A leader that cannot renew stops
enqueueing at once, and one that was frozen past its lease notices from its
own clock before it enqueues anything. Every run is published with the message
id ``schedule id : due time``, so a change of leader never enqueues it twice.
The loop keeps the schedules in memory from a KV watch and sleeps until the
next due time or the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence

import msgspec

from naq import tracing
from naq.broker import Broker, decode_or_none
from naq.dependencies import MISSING, hold
from naq.errors import ConfigurationError, NaqException
from naq.models import (
    JobEnvelope,
    JobStatus,
    ScheduleRecord,
    ScheduleStatus,
    StatusRecord,
    WaitingJob,
    envelope_encoder,
    record_encoder,
    schedule_decoder,
    status_of,
)
from naq.names import SCHEDULER_LOCK_KEY
from naq.schedules import ScheduleStore, following_run, run_job_id
from naq.security import job_headers
from naq.settings import Settings, get_settings
from naq.store import JobStore
from naq.sync import set_threadsafe
from naq.transport import Bucket, Connection, RevisionConflict, open_connection

log = logging.getLogger("naq.scheduler")

#: Seconds before due runs are tried again after a round NATS failed.
RETRY_ROUND = 1.0

#: Most runs fired at once.
FIRE_BATCH = 200
#: Safety margin: a leader stops acting this long before its lease could expire.
LEASE_MARGIN = 1.0


def tick_id(schedule_id: str, due: float) -> str:
    """Message id of the run of ``schedule_id`` due at ``due``."""
    return f"{schedule_id}:{round(due * 1000)}"


class Scheduler:
    """Enqueues scheduled jobs when due; run several for high availability.

    ``Scheduler(nats_url=None, poll_interval=1.0, instance_id=None,
    enable_ha=True)``. ``poll_interval`` bounds how long the loop sleeps
    without re-checking; due times themselves are met by sleeping until them.
    """

    def __init__(
        self,
        nats_url: str | None = None,
        poll_interval: float = 1.0,
        instance_id: str | None = None,
        enable_ha: bool = True,
        *,
        settings: Settings | None = None,
        module_paths: Sequence[str] = (),
        install_signal_handlers: bool = True,
    ) -> None:
        self.settings = (settings or get_settings()).replace(nats_url=nats_url)
        if poll_interval <= 0:
            raise ConfigurationError(f"poll_interval={poll_interval!r} must be > 0")
        self.poll_interval = float(poll_interval)
        self.instance_id = instance_id or f"scheduler-{uuid.uuid4().hex[:8]}"
        self.enable_ha = enable_ha
        self.module_paths = list(module_paths)
        self.install_signal_handlers = install_signal_handlers
        self.enqueued = 0
        self._lease_until = 0.0
        self._lease_revision: int | None = None
        #: Wall-clock time this scheduler began to lead (start-up, without HA): a run due
        #: before it may have been enqueued by a leader that died before recording it.
        self._leading_since = time.time()
        self._schedules: dict[str, tuple[ScheduleRecord, int]] = {}
        self._changed: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._connection: Connection | None = None
        self._broker: Broker | None = None
        self._store: ScheduleStore | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this scheduler holds a lease that is still valid by its own clock."""
        return not self.enable_ha or time.monotonic() < self._lease_until

    def request_stop(self) -> None:
        """Stop the scheduler (releasing the lease so a standby takes over at once).

        Safe from any thread.
        """
        if self._stopping is not None and self._event_loop is not None:
            set_threadsafe(self._stopping, self._event_loop)

    def run_sync(self) -> None:
        """Blocking form of :meth:`run`."""
        asyncio.run(self.run())

    async def run(self) -> None:
        """Lead or stand by, and enqueue due jobs while leading, until stopped.

        Raises:
            NaqConnectionError: NATS can't be reached at start.
        """
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._event_loop = asyncio.get_running_loop()
        for module in self.module_paths:
            importlib.import_module(module)
        self._connection = await open_connection(self.settings, name=f"naq-{self.instance_id}")
        self._broker = Broker(self._connection, self.settings)
        self._store = ScheduleStore(self._broker)
        self._jobs = JobStore(self._broker)
        await self._broker.ensure_jobs_stream()
        await self._broker.status_kv()
        self._install_signals()
        tasks = [asyncio.create_task(self._watch())]
        if self.enable_ha:
            tasks.append(asyncio.create_task(self._lease_loop()))
        log.info(
            "scheduler %s started (HA %s)", self.instance_id, "on" if self.enable_ha else "off"
        )
        try:
            await self._loop()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await self._release()
            await self._connection.close()
            log.info("scheduler %s stopped (%d enqueued)", self.instance_id, self.enqueued)

    def _install_signals(self) -> None:
        if not self.install_signal_handlers:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)

    # -- leadership --------------------------------------------------------------

    async def _lock_kv(self) -> Bucket:
        assert self._connection is not None and self._broker is not None
        return await self._connection.kv(
            self._broker.names.scheduler_lock_bucket, ttl=float(self.settings.scheduler_lock_ttl)
        )

    async def _lease_loop(self) -> None:
        kv = await self._lock_kv()
        ttl = float(self.settings.scheduler_lock_ttl)
        renew = min(float(self.settings.scheduler_lock_renew_interval), ttl / 3)
        # Standbys try often: a create on a held lock is one cheap round trip.
        standby_poll = min(0.25, renew)
        value = self.instance_id.encode()
        while True:
            started = time.monotonic()
            try:
                if self._lease_revision is None:
                    self._lease_revision = await kv.create(SCHEDULER_LOCK_KEY, value)
                    self._leading_since = time.time()
                    log.info("scheduler %s is now the leader", self.instance_id)
                else:
                    self._lease_revision = await kv.update(
                        SCHEDULER_LOCK_KEY, value, last=self._lease_revision
                    )
                self._lease_until = started + ttl - LEASE_MARGIN
                assert self._changed is not None
                self._changed.set()
                await asyncio.sleep(renew)
            except RevisionConflict:
                if self._lease_revision is not None:
                    log.warning("scheduler %s lost the lease", self.instance_id)
                self._lease_revision = None
                self._lease_until = 0.0
                await asyncio.sleep(standby_poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Can't reach NATS: keep the lease only as long as our clock says it is ours.
                log.warning("scheduler %s: lease renewal failed: %r", self.instance_id, exc)
                await asyncio.sleep(standby_poll)

    async def _release(self) -> None:
        if not self.enable_ha or self._lease_revision is None:
            return
        self._lease_until = 0.0
        with contextlib.suppress(Exception):
            kv = await self._lock_kv()
            await kv.delete(SCHEDULER_LOCK_KEY, last=self._lease_revision)
        self._lease_revision = None

    # -- schedules ---------------------------------------------------------------

    async def _watch(self) -> None:
        assert self._store is not None and self._changed is not None
        kv = await self._store.kv()
        while True:
            try:
                async with kv.watch() as changes:
                    while True:
                        change = await changes.next()
                        if change.value is None:
                            self._schedules.pop(change.key, None)
                        else:
                            record = decode_or_none(schedule_decoder, change.value)
                            known = self._schedules.get(change.key)
                            # Our own writes are applied at once; a lagging watch must not
                            # undo them.
                            if record is not None and (known is None or known[1] < change.revision):
                                self._schedules[change.key] = (record, change.revision)
                        self._changed.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduler %s: watch failed (%r); restarting", self.instance_id, exc)
                await asyncio.sleep(1.0)

    async def _loop(self) -> None:
        assert self._changed is not None and self._stopping is not None
        while not self._stopping.is_set():
            self._changed.clear()
            wait = self.poll_interval
            if self.is_leader:
                now = time.time()
                due: list[tuple[float, str]] = []
                for schedule_id, (record, _rev) in self._schedules.items():
                    if record.status == ScheduleStatus.ACTIVE:
                        heapq.heappush(due, (record.next_run, schedule_id))
                firing = []
                while due and due[0][0] <= now:
                    firing.append(heapq.heappop(due)[1])
                # Runs due together go out together, not one round trip after another.
                try:
                    for start in range(0, len(firing), FIRE_BATCH):
                        batch = firing[start : start + FIRE_BATCH]
                        await asyncio.gather(*(self._fire(schedule_id) for schedule_id in batch))
                except NaqException as exc:
                    # NATS refused or timed out (a node lost, a leader moving): the runs not
                    # recorded are still due, and fire again at the next round.
                    log.warning("scheduler: a round of due runs failed, trying again: %s", exc)
                    wait = min(wait, RETRY_ROUND)
                if due:
                    wait = min(wait, max(0.0, due[0][0] - time.time()))
                wait = min(wait, max(0.0, self._lease_until - time.monotonic()))
            stop = asyncio.ensure_future(self._stopping.wait())
            change = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({stop, change}, timeout=wait, return_when="FIRST_COMPLETED")
            finally:
                stop.cancel()
                change.cancel()

    async def _fire(self, schedule_id: str) -> None:
        assert self._broker is not None and self._store is not None
        found = self._schedules.get(schedule_id)
        if found is None or not self.is_leader:
            return
        record, _revision = found
        due = record.next_run
        run_number = record.runs + 1
        job_id = run_job_id(schedule_id, run_number)
        waits = bool(record.job.depends_on)
        if due <= self._leading_since and await self._enqueued_before(job_id, due, waits):
            # The previous leader enqueued this run and died before recording it: record it
            # now. Enqueueing it again would be dropped as a duplicate message, but its
            # pending status would overwrite the run's progress (a completed run shown
            # pending again).
            log.info("scheduler: %s was enqueued by the previous leader", job_id)
            await self._advance(schedule_id, due)
            return
        now = time.time()
        envelope = msgspec.structs.replace(record.job, id=job_id, enqueued_at=now)
        connection = self._broker.connection
        try:
            # Each run starts a trace of its own; its message carries it to the worker.
            with tracing.schedule_span(envelope, schedule_id):
                pending = status_of(envelope, JobStatus.PENDING)
                status = await self._jobs.put_pending(pending)
                payload = envelope_encoder.encode(envelope)
                headers = job_headers(self.settings, tick_id(schedule_id, due), payload)
                if envelope.depends_on:
                    # The status first: until it says pending, a new leader fires it again.
                    await connection.wait_ack(status)
                    await self._hold(envelope, payload, headers, pending)
                else:
                    published = connection.publish_nowait(
                        self._broker.names.queue_subject(envelope.queue), payload, headers
                    )
                    outcomes = await connection.wait_acks([published, status], timeout=10.0)
                    if isinstance(outcomes[0], BaseException):
                        raise outcomes[0]
        except Exception as exc:
            await self._record_failure(schedule_id, due, exc)
            return
        self.enqueued += 1
        lateness = now - due
        log.debug(
            "scheduler: enqueued %s (run %d, %.1f ms late)", job_id, run_number, lateness * 1e3
        )
        await self._advance(schedule_id, due)

    async def _hold(
        self, envelope: JobEnvelope, payload: bytes, headers: dict[str, str], pending: StatusRecord
    ) -> None:
        """Park a due run until its dependencies complete (or fail it if one failed)."""
        outcomes = {dep: await self._jobs.outcome_of(dep) or MISSING for dep in envelope.depends_on}
        waiting = WaitingJob(
            job_id=envelope.id,
            queue=envelope.queue,
            waiting_on=list(envelope.depends_on),
            payload=payload,
            headers=headers,
        )
        await hold(self._jobs, waiting, outcomes, pending)

    async def _enqueued_before(self, job_id: str, due: float, waits: bool = False) -> bool:
        """Whether the run ``job_id`` due at ``due`` was enqueued already.

        Its status record says so: "scheduled" until it is enqueued, and then enqueued at
        or after its due time, while a record left by an earlier schedule of the same id
        (cancelled, then made again) is older than that. A run that ``waits`` on
        dependencies says "pending" before it is parked: only its parked record, or a
        status beyond pending, shows it was (parking it again is harmless).
        """
        assert self._broker is not None
        try:
            status = await self._broker.read_status(job_id)
        except Exception as exc:  # can't tell: enqueue it, the message id still dedupes it
            log.warning("scheduler: cannot read the status of %s: %r", job_id, exc)
            return False
        if status is None or status.status == JobStatus.SCHEDULED or status.enqueued_at < due:
            return False
        if waits and status.status == JobStatus.PENDING:
            return await self._jobs.parking.parked(job_id) is not None
        return True

    async def _advance(self, schedule_id: str, due: float) -> None:
        """Record the run due at ``due`` and move the schedule on (or remove it when done).

        Compare-and-set on the record's revision: a pause or modification made
        meanwhile is kept, and the run is recorded on top of it.
        """
        assert self._store is not None
        store = self._store
        kv = await store.kv()
        for _ in range(20):
            found = await store.get(schedule_id)
            if found is None:
                self._schedules.pop(schedule_id, None)
                return
            record, revision = found
            if record.last_run is not None and record.last_run >= due:
                self._schedules[schedule_id] = found
                return  # already recorded (e.g. by a previous leader)
            now = time.time()
            fired = msgspec.structs.replace(record, runs=record.runs + 1, last_run=due, failures=0)
            try:
                following = following_run(fired, due, now)
                if following is None:
                    if await store.delete(schedule_id, revision):
                        self._schedules.pop(schedule_id, None)
                        return
                    continue
                updated = msgspec.structs.replace(fired, next_run=following)
                new_revision = await kv.update(
                    schedule_id, record_encoder.encode(updated), last=revision
                )
            except RevisionConflict:
                continue
            except Exception as exc:
                log.error("scheduler: cannot advance schedule %s: %r", schedule_id, exc)
                return
            # Reflect our own write at once so the loop doesn't see the old due time.
            self._schedules[schedule_id] = (updated, new_revision)
            return

    async def _record_failure(self, schedule_id: str, due: float, exc: BaseException) -> None:
        assert self._store is not None
        limit = self.settings.max_schedule_failures
        log.warning("scheduler: enqueueing schedule %s failed: %r", schedule_id, exc)

        def change(record: ScheduleRecord) -> ScheduleRecord:
            failures = record.failures + 1
            status = ScheduleStatus.FAILED if failures >= limit else record.status
            return msgspec.structs.replace(
                record,
                failures=failures,
                status=status,
                last_error=f"{type(exc).__name__}: {exc}",
                next_run=time.time() + min(60.0, self.poll_interval * 2**failures),
            )

        with contextlib.suppress(Exception):
            await self._store.update(schedule_id, change)
