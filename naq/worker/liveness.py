"""How a worker shows it is alive: heartbeats, in-progress acks, running statuses.

The heartbeat keeps the worker's record fresh in the workers bucket (a worker without
one looks dead to ``naq workers``, the TUI and the recovery of its jobs), with the
process's CPU % since the previous beat and its memory (:mod:`naq.worker.usage`);
in-progress acks keep the server from handing a long job to another worker; a job's
running status is written once it has run ``running_status_delay`` (a quicker job never
needs one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

from naq.models import JobEnvelope, JobStatus, StatusRecord, WorkerRecord, WorkerStatus
from naq.transport import forget
from naq.worker.state import RunningJob, WorkerState
from naq.worker.usage import ProcessUsage

log = logging.getLogger("naq.worker")

#: Seconds before the first retry of a missed heartbeat (doubling up to the interval).
HEARTBEAT_RETRY = 0.5

#: Builds a job's status record: (envelope, status, attempt, started_at=...) -> record.
StatusOf = Callable[..., StatusRecord]


class Liveness:
    """The worker's heartbeat, its running jobs' in-progress acks and running statuses."""

    def __init__(
        self,
        state: WorkerState,
        status_of: StatusOf,
        *,
        heartbeat_interval: float,
        worker_ttl: float,
        started_at: float,
    ) -> None:
        self._state = state
        self._status_of = status_of
        self._running = state.running
        self._delay = state.settings.running_status_delay
        self.heartbeat_interval = heartbeat_interval
        self._worker_ttl = worker_ttl
        self._started_at = started_at
        #: CPU % between heartbeats and resident memory, sent with each.
        self._usage = ProcessUsage()
        #: The next sweep for due running statuses, while one is needed.
        self._sweep_timer: asyncio.TimerHandle | None = None

    # -- running statuses ----------------------------------------------------------

    def announce(
        self, running: RunningJob, envelope: JobEnvelope, attempt: int, started: float
    ) -> None:
        """Have the job's running status written if it still runs ``running_status_delay``
        from now (the attempt calls the write off by clearing ``running.announcement``)."""
        running.announcement = (envelope, attempt, started)
        running.announce_at = time.monotonic() + self._delay
        if self._sweep_timer is None:
            self._sweep_timer = self._state.loop.call_later(self._delay / 2, self._sweep)

    def _sweep(self) -> None:
        """Write the running status of jobs that have run ``running_status_delay``.

        One sweep every half-delay while any is pending, rather than a timer per job (most
        jobs end sooner, and a timer costs more than the rest of their bookkeeping).
        """
        self._sweep_timer = None
        now = time.monotonic()
        pending = False
        for running in self._running.values():
            announcement = running.announcement
            if announcement is None:
                continue
            if running.announce_at > now:
                pending = True
                continue
            running.announcement = None
            envelope, attempt, started = announcement
            if now - running.announce_at > self._state.ack_wait / 2:
                # Far too late: this process was frozen (SIGSTOP, swap), the message may
                # have gone to another worker meanwhile, whose status must stand.
                log.warning("job %s: running status skipped after a stall", envelope.id)
                continue
            record = self._status_of(envelope, JobStatus.RUNNING, attempt, started_at=started)
            # Its outcome's status waits for the result's ack first, so this goes before.
            forget(asyncio.ensure_future(self._state.store.running(record)))
        if pending:
            self._sweep_timer = self._state.loop.call_later(self._delay / 2, self._sweep)

    def stop(self) -> None:
        """Stop sweeping for running statuses."""
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None

    # -- in-progress acks ----------------------------------------------------------

    async def keepalive_loop(self) -> None:
        """In-progress acks keep a long job from being redelivered while this worker lives."""
        state = self._state
        interval = max(0.2, state.ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            held = [job.msg for job in state.held_jobs()]
            held.extend(msg for _, msg in state.backlog)
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    # -- heartbeat -----------------------------------------------------------------

    async def heartbeat_loop(self, beating: bool) -> None:
        """Beat every ``heartbeat_interval``; after a missed beat (``beating`` false at
        first), try again sooner, backing off: a worker without a fresh record looks dead
        to ``naq workers``, the TUI and the recovery of its jobs."""
        retry = HEARTBEAT_RETRY
        delay = self.heartbeat_interval if beating else retry
        while True:
            await asyncio.sleep(delay)
            if await self.beat():
                delay, retry = self.heartbeat_interval, HEARTBEAT_RETRY
            else:
                delay, retry = retry, min(retry * 2, self.heartbeat_interval)

    async def beat(self) -> bool:
        """One heartbeat; whether it was stored (a missed one is logged, the worker goes on)."""
        try:
            await self.heartbeat()
        except Exception as exc:
            log.warning("worker %s: heartbeat failed: %r", self._state.name, exc)
            return False
        return True

    async def heartbeat(self) -> None:
        """Store this worker's record in the workers bucket, and wait for it to be stored."""
        state = self._state
        if state.status != WorkerStatus.STOPPING:
            state.status = WorkerStatus.BUSY if state.running else WorkerStatus.IDLE
        record = WorkerRecord(
            name=state.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=state.queues,
            status=state.status,
            concurrency=state.concurrency,
            started_at=self._started_at,
            heartbeat_at=time.time(),
            running=[job.job_id for job in state.running.values() if job.job_id],
            processed=state.processed,
            failed=state.failed,
            heartbeat_interval=self.heartbeat_interval,
            ttl=self._worker_ttl,
            cpu_percent=self._usage.cpu_percent(),
            rss_bytes=self._usage.rss_bytes(),
            fair=not state.strict_order,
        )
        broker = state.broker
        await broker.connection.wait_ack(await broker.put_worker(record))
