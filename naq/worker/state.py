"""What the parts of a running worker share: its slots, the jobs it holds, its counts."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from naq.broker import Broker
from naq.context import JobContext
from naq.models import AttemptEntry, JobEnvelope, WorkerStatus
from naq.settings import Settings
from naq.store import JobStore
from naq.transport import Msg
from naq.worker.callbacks import Callbacks
from naq.worker.hooks import Hooks
from naq.worker.metering import Metering
from naq.worker.rate import RateGate

#: What a running job last reported: (progress, message, meta).
Progress = tuple[float | None, str | None, dict[str, Any]]


@dataclass
class RunningJob:
    """A job this worker is running now."""

    msg: Msg
    job_id: str
    queue: str
    #: Its job, once its message is decoded.
    envelope: JobEnvelope | None = None
    #: Its key in the worker's tables (the message's ack subject).
    key: str = ""
    task: asyncio.Task[Any] | None = None
    started_at: float = field(default_factory=time.time)
    cancel_requested: bool = False
    #: What its function (and the middleware) see of it, once it runs.
    context: JobContext | None = None
    #: The running status still to write (job, attempt, start time) and when (monotonic);
    #: None once written or moot.
    announcement: tuple[JobEnvelope, int, float] | None = None
    announce_at: float = 0.0


@dataclass(eq=False)
class WorkerState:
    """One run of a worker, as its feeder, attempts and liveness see it.

    The containers are made once and never replaced, so a part may keep a reference
    to one instead of reaching for it through this object on every job.
    """

    settings: Settings
    name: str
    queues: list[str]
    concurrency: int
    broker: Broker
    store: JobStore
    loop: asyncio.AbstractEventLoop
    status: str = WorkerStatus.STARTING
    #: Whether this worker's ack wait was asked for (``Worker(ack_wait=...)``): it is then
    #: made its queues' consumers' own; otherwise they keep the one they have.
    sets_ack_wait: bool = False
    processed: int = 0
    failed: int = 0
    #: Its middleware's hooks (None without middleware: nothing to call per job).
    hooks: Hooks | None = None
    #: What its lifespan yielded (:func:`naq.worker_state`).
    app_state: dict[str, Any] = field(default_factory=dict)
    #: Jobs it may still start before it stops to be replaced (``max_jobs``); None: no limit.
    jobs_left: int | None = None
    #: Its queues that take jobs strictly in their order (else each gets its turn).
    strict_order: bool = True
    #: queue -> the gate spacing its job starts (rate-limited queues only).
    gates: dict[str, RateGate] = field(default_factory=dict)
    #: Jobs whose function runs (they hold the concurrency slots) ...
    running: dict[str, RunningJob] = field(default_factory=dict)
    #: ... jobs whose function has returned, while their outcome is stored (storing is
    #: pipelined, never waited for by a slot) ...
    recording: dict[str, RunningJob] = field(default_factory=dict)
    #: ... and messages delivered while every slot was taken, each with its queue: the
    #: next free slot takes the first.
    backlog: collections.deque[tuple[str, Msg]] = field(default_factory=collections.deque)
    #: job id -> what the running job last reported.
    progress: dict[str, Progress] = field(default_factory=dict)
    #: Set when the feeder should look at the slots again.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set while no job runs here.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once the worker is to stop.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: When the first job of this run started and the last one ended (monotonic).
    first_started: float | None = None
    last_ended: float = 0.0

    #: job id -> the attempts of a job run again before this one (carried into its status).
    earlier_attempts: dict[str, list[AttemptEntry]] = field(default_factory=dict)

    #: The ack wait (seconds) its in-progress acks are paced for: its settings', or the
    #: shortest of its queues' consumers' once the feeder has met them.
    ack_wait: float = field(init=False)
    #: What its attempts add up to, and its metrics reports.
    metering: Metering = field(init=False)
    #: Its jobs' callbacks.
    callbacks: Callbacks = field(init=False)

    def __post_init__(self) -> None:
        self.idle.set()
        self.ack_wait = self.settings.default_ack_wait
        self.metering = Metering(self.broker, self.name)
        self.callbacks = Callbacks(self.broker, self.settings)

    def held_jobs(self) -> list[RunningJob]:
        """Every job this worker has started and not yet acked: running, or storing its
        outcome (the backlog's messages are not started yet)."""
        return [*self.running.values(), *self.recording.values()]

    def busy_summary(self) -> str:
        """From the first job's start to the last one's end: how long, and how many a second."""
        if self.first_started is None or self.last_ended <= self.first_started:
            return ""
        busy = self.last_ended - self.first_started
        handled = self.processed + self.failed
        return (
            f"; {handled} jobs in {busy:.3f}s from first start to last end "
            f"({handled / busy:,.0f}/s)"
        )
