"""Worker: takes jobs from queues' shared durable consumers and runs them.

One pull consumer per queue is shared by every worker of that queue. A worker
asks for as many messages as it has free slots, runs async functions on its
event loop and sync ones in threads, keeps running jobs alive with in-progress
acks, stores the first result, retries by delayed NAK and moves what can't run
to the dead-letter stream. SIGTERM/SIGINT stop it gracefully; a second signal
stops it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.connection import Connection, Msg, forget, open_connection
from naq.context import JobContext, bind
from naq.dependencies import job_ended
from naq.errors import ConfigurationError, NaqException, SecurityError, SerializationError
from naq.execution import Executor, JobTimeout
from naq.job import with_task_defaults
from naq.models import (
    DeadLetter,
    JobEnvelope,
    JobStatus,
    ResultRecord,
    StatusRecord,
    WorkerRecord,
    WorkerStatus,
    decode_envelope,
    status_of,
    waiting_decoder,
)
from naq.names import validate_queue_name
from naq.puller import Puller
from naq.results import encode_result
from naq.retry import retry_delay, should_retry
from naq.security import check_signature
from naq.serialization import (
    convert_arguments,
    pickle_dumps,
    pickle_loads,
    resolve_function,
)
from naq.settings import Settings, get_settings
from naq.store import JobStore
from naq.sync import set_threadsafe

log = logging.getLogger("naq.worker")

#: Most messages asked for in one pull.
MAX_BATCH = 256
#: How long one pull request waits for messages when the queue is idle.
PULL_WAIT = 10.0
#: Burst mode: first and longest pause between looks at the queues while they hold jobs.
BURST_RECHECK = 0.05
BURST_RECHECK_MAX = 0.5
#: Jobs whose outcome may be on its way to the server while their slots run the next ones:
#: the concurrency, but never fewer than this, so a worker with one slot fetches its next
#: job during its last one's result round trip instead of after it.
MIN_RECORDING = 8
#: Seconds before the first retry of a missed heartbeat (doubling up to the interval).
HEARTBEAT_RETRY = 0.5


def delivery_count(msg: Msg) -> int:
    """How many times JetStream has delivered ``msg`` (this delivery included).

    Read straight from the ack subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``):
    the full metadata parse costs more than the rest of a no-op job's bookkeeping.
    """
    reply = msg.reply or ""
    tokens = reply.split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[4])
    return int(msg.metadata.num_delivered)


@dataclass
class RunningJob:
    """A job this worker is running now."""

    msg: Msg
    job_id: str
    queue: str
    #: Its key in the worker's tables (the message's ack subject).
    key: str = ""
    task: asyncio.Task[Any] | None = None
    started_at: float = field(default_factory=time.time)
    cancel_requested: bool = False
    #: The running status still to write (job, attempt, start time) and when (monotonic);
    #: None once written or moot.
    announcement: tuple[JobEnvelope, int, float] | None = None
    announce_at: float = 0.0


class Worker:
    """Runs jobs from one or more queues.

    ``Worker(queues, nats_url=None, concurrency=10, worker_name=None,
    heartbeat_interval=15, worker_ttl=60)`` plus keyword options ``burst``
    (exit once the queues are empty), ``module_paths`` (modules to import at
    start, e.g. those registering ``@naq.task`` functions), ``allowed_modules``
    (module prefixes jobs may import; checked before importing) and
    ``shutdown_grace`` (seconds running jobs get to finish on SIGTERM).

    Raises:
        ConfigurationError: a bad queue name or option (named in the message).
    """

    def __init__(
        self,
        queues: str | Sequence[str] | None = None,
        nats_url: str | None = None,
        concurrency: int = 10,
        worker_name: str | None = None,
        heartbeat_interval: float | None = None,
        worker_ttl: float | None = None,
        *,
        burst: bool = False,
        module_paths: Sequence[str] = (),
        allowed_modules: Sequence[str] | None = None,
        shutdown_grace: float = 30.0,
        settings: Settings | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        base = (settings or get_settings()).replace(nats_url=nats_url)
        if allowed_modules is not None:
            base = base.replace(allowed_modules=tuple(allowed_modules))
        self.settings = base
        if queues is None:
            queues = [base.default_queue]
        elif isinstance(queues, str):
            queues = [queues]
        self.queues = list(dict.fromkeys(validate_queue_name(q) for q in queues))
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency={concurrency!r} must be an integer >= 1")
        self.concurrency = concurrency
        self.name = worker_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        if not all(c.isalnum() or c in "-_" for c in self.name):
            raise ConfigurationError(
                f"worker_name={self.name!r} may only hold letters, digits, '-' and '_'"
            )
        self.heartbeat_interval = float(heartbeat_interval or base.worker_heartbeat_interval)
        self.worker_ttl = float(worker_ttl or base.worker_ttl)
        if self.heartbeat_interval <= 0 or self.worker_ttl < self.heartbeat_interval:
            raise ConfigurationError(
                f"heartbeat_interval={self.heartbeat_interval!r} must be > 0 and <= "
                f"worker_ttl={self.worker_ttl!r}"
            )
        self.burst = burst
        self.module_paths = list(module_paths)
        self.shutdown_grace = float(shutdown_grace)
        self.install_signal_handlers = install_signal_handlers
        self.processed = 0
        self.failed = 0
        self.status = WorkerStatus.STARTING
        self.started_at = time.time()
        #: Jobs whose function runs (they hold the concurrency slots) ...
        self._running: dict[str, RunningJob] = {}
        #: ... and jobs whose function has returned, while their outcome is stored. As
        #: many again (at least MIN_RECORDING) may be in this state: storing is pipelined,
        #: never waited for by a slot.
        self._recording: dict[str, RunningJob] = {}
        self._wake: asyncio.Event | None = None  # made in run(): needs the loop
        #: Set while no job runs here.
        self._idle: asyncio.Event | None = None
        #: When the first job of this run started and the last one ended (monotonic).
        self._first_started: float | None = None
        self._last_ended = 0.0
        self._pullers: list[Puller] = []
        self._cancelled: set[str] = set()
        self._functions: dict[tuple[str, str | None], Any] = {}
        #: job id -> (progress, message, meta) last reported by the running job.
        self._progress: dict[str, tuple[float | None, str | None, dict[str, Any]]] = {}
        #: The next sweep for due running statuses, while one is needed.
        self._announce_sweep: asyncio.TimerHandle | None = None
        #: dependency id -> parked jobs waiting on it, and the reverse.
        self._dependents: dict[str, set[str]] = {}
        self._waiting: dict[str, list[str]] = {}
        self._stopping: asyncio.Event | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._connection: Connection | None = None
        self._broker: Broker | None = None
        self._store: JobStore | None = None
        self._executor: Executor | None = None
        self._signals = 0

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, queues={self.queues!r}, concurrency={self.concurrency})"

    # -- lifecycle -----------------------------------------------------------

    def run_sync(self) -> None:
        """Run the worker in this thread until it stops (blocking form of :meth:`run`)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        """Connect, take and run jobs until stopped (or, in burst mode, until idle).

        Raises:
            NaqConnectionError: NATS can't be reached at start.
        """
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()
        self._event_loop = asyncio.get_running_loop()
        for module in self.module_paths:
            importlib.import_module(module)
        self._connection = await open_connection(
            self.settings,
            name=f"naq-worker-{self.name}",
            on_reconnect=self._on_reconnect,
        )
        self._broker = Broker(self._connection, self.settings)
        self._store = JobStore(self._broker)
        self._executor = Executor(self.concurrency)
        self._install_signals()
        loops: list[asyncio.Task[Any]] = []
        try:
            pullers: list[Puller] = []
            # Few slots for many queues: short polls so an idle queue can't hold them long.
            expires = PULL_WAIT if self.concurrency >= len(self.queues) else 1.0
            for queue in self.queues:
                consumer = await self._broker.ensure_consumer(queue)
                puller = Puller(
                    self._connection,
                    self._broker.names.jobs_stream,
                    consumer,
                    deliver=functools.partial(self._start, queue),
                    on_change=self._wake_feeder,
                    expires=expires,
                )
                await puller.start()
                pullers.append(puller)
            self._pullers = pullers
            for queue, puller in zip(self.queues, pullers, strict=True):
                await self._connection.nc.subscribe(
                    self._broker.names.queue_resumed_subject(queue),
                    cb=functools.partial(self._on_resumed, puller),
                )
            await self._broker.ensure_failed_stream()
            await self._broker.status_kv()
            await self._broker.results_kv()
            # Know every cancellation and parked dependent before taking a job.
            await self._broker.cancelled_kv()
            await self._store.waiting_kv()
            names = self._broker.names
            loops.append(await self._broker.mirror(names.cancelled_bucket, self._on_cancelled))
            loops.append(await self._broker.mirror(names.waiting_bucket, self._on_waiting))
            await self._connection.nc.subscribe(
                self._broker.names.worker_control_subject(self.name), cb=self._on_control
            )
            self.status = WorkerStatus.IDLE
            # Missed e.g. while a cluster elects the workers bucket's leader: the loop retries.
            beating = await self._beat()
            log.info(
                "worker %s started on %s (concurrency %d)",
                self.name,
                ", ".join(self.queues),
                self.concurrency,
            )
            per_queue = max(1, math.ceil(self.concurrency / len(pullers)))
            loops.append(asyncio.create_task(self._feed(pullers, per_queue)))
            loops.append(asyncio.create_task(self._heartbeat_loop(beating)))
            loops.append(asyncio.create_task(self._keepalive_loop()))
            if self.burst:
                loops.append(asyncio.create_task(self._burst_watch()))
            await self._stopping.wait()
        finally:
            await self._shutdown(loops)

    def request_stop(self) -> None:
        """Ask the worker to stop gracefully (same as SIGTERM); safe from any thread."""
        if self._stopping is not None and self._event_loop is not None:
            set_threadsafe(self._stopping, self._event_loop)

    async def stop(self) -> None:
        """Ask the worker to stop gracefully."""
        self.request_stop()

    def _install_signals(self) -> None:
        if (
            not self.install_signal_handlers
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info(
                "worker %s: %s, finishing running jobs (again to stop now)",
                self.name,
                signal.Signals(sig).name,
            )
            self.request_stop()
        else:
            log.warning("worker %s: second signal, stopping now", self.name)
            os._exit(1)

    async def _shutdown(self, loops: list[asyncio.Task[Any]]) -> None:
        self.status = WorkerStatus.STOPPING
        for puller in self._pullers:
            await puller.stop()
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(BaseException):
                await task
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._heartbeat()
        running = [job.task for job in self._held_jobs() if job.task is not None]
        if running:
            log.info(
                "worker %s: waiting up to %gs for %d running job(s)",
                self.name,
                self.shutdown_grace,
                len(running),
            )
            done, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for job in self._held_jobs():
                if job.task in pending:
                    # Hand the job back now rather than after the ack wait.
                    with contextlib.suppress(Exception):
                        await job.msg.nak()
                    job.task.cancel()  # type: ignore[union-attr]
        if self._executor is not None:
            self._executor.shutdown()
        if self._broker is not None:
            with contextlib.suppress(Exception):
                kv = await self._broker.workers_kv()
                await kv.delete(self.name)
        if self._announce_sweep is not None:
            self._announce_sweep.cancel()
        if self._connection is not None:
            await self._connection.close()
        log.info(
            "worker %s stopped (%d processed, %d failed)%s",
            self.name,
            self.processed,
            self.failed,
            self._busy_summary(),
        )

    def _busy_summary(self) -> str:
        """From the first job's start to the last one's end: how long, and how many a second."""
        if self._first_started is None or self._last_ended <= self._first_started:
            return ""
        busy = self._last_ended - self._first_started
        handled = self.processed + self.failed
        return (
            f"; {handled} jobs in {busy:.3f}s from first start to last end "
            f"({handled / busy:,.0f}/s)"
        )

    # -- taking jobs -----------------------------------------------------------

    def _wake_feeder(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _feed(self, pullers: list[Puller], per_queue: int) -> None:
        """Keep every queue's pull requests matched to the free slots."""
        assert self._wake is not None and self._stopping is not None
        # Ask in batches once a quarter of a queue's share is free, so a busy
        # worker sends few requests; an empty request list always gets one.
        threshold = max(1, min(per_queue, MAX_BATCH) // 4)
        turn = 0
        while not self._stopping.is_set():
            self._wake.clear()
            now = time.monotonic()
            # Start with a different queue each round: when slots are fewer than
            # queues, every queue gets its turn at them.
            turn = (turn + 1) % len(pullers)
            for puller in pullers[turn:] + pullers[:turn]:
                puller.expire_lost()
                if puller.cooldown_until > now:
                    continue
                owed = sum(p.outstanding for p in pullers)
                room = self.concurrency - len(self._running) - owed
                if len(self._recording) >= max(self.concurrency, MIN_RECORDING):
                    room = 0  # the server is behind with outcomes: let it catch up
                want = min(room, per_queue - puller.outstanding, MAX_BATCH)
                if want > 0 and (want >= threshold or puller.outstanding == 0):
                    try:
                        await puller.request(want)
                    except Exception as exc:
                        log.warning("worker %s: pull request failed (%r)", self.name, exc)
                        puller.cooldown_until = now + 1.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    def _start(self, queue: str, msg: Msg) -> None:
        assert self._stopping is not None
        if self._stopping.is_set():
            # Arrived while stopping: hand it straight back.
            asyncio.ensure_future(msg.nak())
            return
        key = msg.reply or str(id(msg))
        running = RunningJob(msg=msg, job_id="", queue=queue, key=key)
        self._running[key] = running
        if self._first_started is None:
            self._first_started = time.monotonic()
        assert self._idle is not None
        self._idle.clear()
        running.task = asyncio.create_task(self._process(key, running))

    async def _process(self, key: str, running: RunningJob) -> None:
        try:
            await self._handle(running)
        except asyncio.CancelledError:
            if not running.cancel_requested:
                raise
            await self._finish_cancelled(running)
        except Exception:
            # A bug here must not kill the worker; the message is redelivered after the ack wait.
            log.exception("worker %s: unexpected error handling a message", self.name)
        finally:
            # The job and its task refer to each other (and its context to both): cut that
            # here, so they are freed at once rather than by the garbage collector.
            running.task = None
            self._running.pop(key, None)
            self._recording.pop(key, None)
            self._progress.pop(running.job_id, None)
            self._last_ended = time.monotonic()
            if not self._running and not self._recording and self._idle is not None:
                self._idle.set()
            self._wake_feeder()

    def _on_cancelled(self, job_id: str, value: bytes | None) -> None:
        if value is None:
            self._cancelled.discard(job_id)
            return
        self._cancelled.add(job_id)
        for running in self._running.values():
            if running.job_id == job_id and running.task is not None:
                running.cancel_requested = True
                running.task.cancel()

    def _on_waiting(self, job_id: str, value: bytes | None) -> None:
        for dependency in self._waiting.pop(job_id, ()):
            dependents = self._dependents.get(dependency)
            if dependents is not None:
                dependents.discard(job_id)
                if not dependents:
                    del self._dependents[dependency]
        waiting = decode_or_none(waiting_decoder, value) if value else None
        if waiting is None:
            return
        self._waiting[job_id] = list(waiting.waiting_on)
        for dependency in waiting.waiting_on:
            self._dependents.setdefault(dependency, set()).add(job_id)

    async def _on_control(self, msg: Msg) -> None:
        command = msg.data.decode(errors="replace").strip()
        if command == "stop":
            log.info("worker %s: stop requested remotely", self.name)
            self.request_stop()
            reply = b"stopping"
        else:
            reply = f"unknown command {command!r}".encode()
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply)

    async def _on_resumed(self, puller: Puller, _msg: Msg) -> None:
        try:
            await puller.kick()
        except Exception as exc:
            log.debug("kick after resume failed: %r", exc)

    async def _on_reconnect(self) -> None:
        # Pull requests die with the old connection: ask again from scratch.
        log.info("worker %s reconnected to NATS", self.name)
        for puller in self._pullers:
            puller.reset()

    async def _burst_watch(self) -> None:
        """Burst mode: stop once no queue has pending or unacked jobs and nothing runs here."""
        assert self._broker is not None and self._connection is not None and self._idle
        stream = self._broker.names.jobs_stream
        pause = BURST_RECHECK
        while True:
            await self._idle.wait()
            idle = True
            for queue in self.queues:
                info = await self._connection.js.consumer_info(
                    stream, self._broker.names.consumer(queue)
                )
                if info.num_pending or info.num_ack_pending:
                    idle = False
                    break
            if idle and not self._running and not self._recording:
                self.request_stop()
                return
            # e.g. the last ack is still on its way, or another worker holds jobs: look again,
            # less often the longer it lasts.
            await asyncio.sleep(pause)
            pause = min(pause * 2, BURST_RECHECK_MAX)

    # -- running one job ---------------------------------------------------------

    async def _handle(self, running: RunningJob) -> None:
        assert self._broker is not None and self._executor is not None
        assert self._store is not None
        msg = running.msg
        delivered = delivery_count(msg)
        try:
            check_signature(self.settings, msg.data, msg.headers)
        except SecurityError as exc:
            await self._dead_letter(msg, running.queue, None, f"refused: {exc}")
            return
        try:
            envelope = with_task_defaults(decode_envelope(msg.data))
            if envelope.queue != running.queue:
                raise SerializationError(
                    f"job names queue {envelope.queue!r} but arrived on {running.queue!r}"
                )
        except SerializationError as exc:
            await self._dead_letter(msg, running.queue, None, f"malformed message: {exc}")
            return
        running.job_id = envelope.id
        if envelope.id in self._cancelled:
            # Cancelled while pending: whoever cancelled it recorded the outcome; its
            # dependents are settled (again) before the message goes.
            await self._job_ended(envelope.id)
            await msg.ack()
            return
        if envelope.serializer == "pickle" and self.settings.job_serializer != "pickle":
            await self._refuse(
                msg,
                envelope,
                "pickled payload refused: this worker only accepts JSON jobs "
                "(set NAQ_JOB_SERIALIZER=pickle on trusted deployments)",
            )
            return
        previous: StatusRecord | None = None
        if delivered > 1:
            assert self._store is not None
            previous, result = await asyncio.gather(
                self._broker.read_status(envelope.id), self._store.read_result(envelope.id)
            )
            if result is not None:
                # Delivered again after it ended (its worker died before the ack, or the
                # ack got lost): never run twice, but finish what its end still owed —
                # the status, and the release of its dependents.
                if previous is None or previous.status not in JobStatus.ENDED:
                    await self._store.align(envelope.id)
                await self._job_ended(envelope.id)
                await msg.ack()
                return
        attempt = 1
        if previous is not None:
            if previous.status in JobStatus.ENDED:
                await msg.ack()
                return
            attempt = (
                previous.attempt + 1
                if previous.status == JobStatus.RETRY
                else max(1, previous.attempt)
            )
        if delivered > envelope.max_retries + 1 + self.settings.max_crash_redeliveries:
            reason = f"delivered {delivered} times without finishing (worker crashes?)"
            await self._fail(
                msg,
                envelope,
                attempt,
                None,
                reason,
                "DeliveryLimitExceeded",
                None,
                dead_letter_reason=reason,
            )
            return
        try:
            func = self._function(envelope)
            if envelope.serializer == "pickle":
                _, args, kwargs = pickle_loads(envelope.pickled or b"")
                args = list(args)
            else:
                args, kwargs = convert_arguments(func, envelope.args, envelope.kwargs)
        except (SecurityError, SerializationError) as exc:
            await self._refuse(msg, envelope, str(exc), type(exc).__name__)
            return
        started = time.time()
        if self.settings.running_status_delay > 0:
            # Written by _sweep_announcements if the job is still running by then.
            running.announcement = (envelope, attempt, started)
            running.announce_at = time.monotonic() + self.settings.running_status_delay
            if self._announce_sweep is None:
                self._announce_sweep = asyncio.get_running_loop().call_later(
                    self.settings.running_status_delay / 2, self._sweep_announcements
                )
        else:
            record = self._status(envelope, JobStatus.RUNNING, attempt, started_at=started)
            # The outcome written later on the same connection follows it in order.
            await self._store.running(record)
        bind(self._context(running, envelope, attempt, started))
        failure: Exception | None = None
        try:
            value = await self._executor.run(func, args, kwargs, envelope.timeout)
            payload = self._result_payload(envelope, value, attempt, started)
        except Exception as exc:
            failure = exc
        finally:
            # Before any outcome is written, success or failure: a running status still due
            # must not land after it. A job ended sooner goes from pending to its outcome.
            running.announcement = None
            self._function_returned(running)
        if failure is not None:
            await self._failed_attempt(msg, envelope, attempt, started, failure)
            return
        await self._store_outcome(msg, envelope, payload, JobStatus.COMPLETED, attempt, started)
        self.processed += 1

    def _held_jobs(self) -> list[RunningJob]:
        """Every job whose message this worker holds: running, or storing its outcome."""
        return [*self._running.values(), *self._recording.values()]

    def _function_returned(self, running: RunningJob) -> None:
        """Free the job's slot: what is left is storing its outcome."""
        if self._running.pop(running.key, None) is not None:
            self._recording[running.key] = running
            self._wake_feeder()

    def _sweep_announcements(self) -> None:
        """Write the running status of jobs that have run ``running_status_delay``
        (a quicker job never needs it).

        One sweep every half-delay while any is pending, rather than a timer per job (most
        jobs end sooner, and a timer costs more than the rest of their bookkeeping).
        """
        store = self._store
        assert store is not None
        self._announce_sweep = None
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
            if now - running.announce_at > self.settings.default_ack_wait / 2:
                # Far too late: this process was frozen (SIGSTOP, swap), the message may
                # have gone to another worker meanwhile, whose status must stand.
                log.warning("job %s: running status skipped after a stall", envelope.id)
                continue
            record = self._status(envelope, JobStatus.RUNNING, attempt, started_at=started)
            # Its outcome's status waits for the result's ack first, so this goes before.
            forget(asyncio.ensure_future(store.running(record)))
        if pending:
            self._announce_sweep = asyncio.get_running_loop().call_later(
                self.settings.running_status_delay / 2, self._sweep_announcements
            )

    def _function(self, envelope: JobEnvelope) -> Any:
        """The job's function; resolved (and checked against allowed_modules) once."""
        key = (envelope.fn, envelope.module)
        func = self._functions.get(key)
        if func is None:
            func = resolve_function(envelope.fn, envelope.module, self.settings.allowed_modules)
            self._functions[key] = func
        return func

    def _result_payload(
        self, envelope: JobEnvelope, value: Any, attempt: int, started: float
    ) -> bytes:
        pickled = None
        if envelope.serializer == "pickle":
            pickled, value = pickle_dumps(value), None
        return encode_result(
            self.settings,
            ResultRecord(
                job_id=envelope.id,
                status=JobStatus.COMPLETED,
                finished_at=time.time(),
                result=value,
                pickled=pickled,
                worker=self.name,
                attempt=attempt,
                started_at=started,
            ),
        )

    async def _store_outcome(
        self,
        msg: Msg,
        envelope: JobEnvelope,
        payload: bytes,
        status: str,
        attempt: int,
        started: float | None,
        error: str | None = None,
    ) -> None:
        assert self._store is not None
        record = self._status(
            envelope, status, attempt, started_at=started, ended_at=time.time(), error=error
        )
        try:
            # Lost to an earlier outcome (e.g. a cancellation): that one stands.
            await self._store.store_outcome(payload, record, envelope.result_ttl)
            # Dependents before the ack: killed in between, the job is delivered again
            # and its redelivery releases them.
            await self._job_ended(envelope.id)
        except NaqException as exc:
            # Not done: leave the message unacked so it is delivered again.
            log.error(
                "worker %s: storing the outcome of %s failed: %s", self.name, envelope.id, exc
            )
            return
        self._store.connection.ack(msg)

    def _context(
        self, running: RunningJob, envelope: JobEnvelope, attempt: int, started: float
    ) -> JobContext:
        assert self._store is not None
        store = self._store

        async def report(progress: float | None, message: str | None, meta: dict[str, Any]) -> None:
            self._progress[envelope.id] = (progress, message, meta)
            # This write says it runs: the delayed one is not needed any more.
            running.announcement = None
            record = self._status(envelope, JobStatus.RUNNING, attempt, started_at=started)
            await store.running(record)

        return JobContext(
            job_id=envelope.id,
            queue=envelope.queue,
            attempt=attempt,
            worker=self.name,
            meta=dict(envelope.meta),
            _report=report,
            _loop=self._event_loop,
        )

    async def _finish_cancelled(self, running: RunningJob) -> None:
        """Record a job cancelled while it ran (its result, if any, is discarded)."""
        assert self._store is not None
        try:
            await self._store.end(running.job_id, JobStatus.CANCELLED, error="cancelled")
            await self._job_ended(running.job_id)
        except NaqException as exc:
            # Left unacked: delivered again, it is skipped as cancelled and settled then.
            log.error(
                "worker %s: recording the cancel of %s failed: %s", self.name, running.job_id, exc
            )
            return
        with contextlib.suppress(Exception):
            await running.msg.ack()
        log.info("job %s cancelled while running", running.job_id)

    async def _job_ended(self, job_id: str) -> None:
        """Settle the jobs parked on ``job_id`` (known from the mirrored waiting bucket,
        so a job nobody waits on costs nothing here)."""
        dependents = self._dependents.get(job_id)
        if dependents and self._store is not None:
            await job_ended(self._store, job_id, sorted(dependents))

    async def _failed_attempt(
        self, msg: Msg, envelope: JobEnvelope, attempt: int, started: float, exc: Exception
    ) -> None:
        assert self._store is not None
        error = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))
        if isinstance(exc, JobTimeout):
            trace = error
        if should_retry(exc, attempt, envelope.max_retries, envelope.retry_on, envelope.ignore_on):
            delay = retry_delay(
                attempt, envelope.retry_delay, envelope.retry_strategy, envelope.retry_jitter
            )
            record = self._status(
                envelope,
                JobStatus.RETRY,
                attempt,
                started_at=started,
                ended_at=time.time(),
                error=error,
                next_retry_at=time.time() + delay,
            )
            await self._store.retrying(record)
            await msg.nak(delay=delay if delay > 0 else None)
            log.info(
                "job %s attempt %d failed (%s); retry in %.2fs", envelope.id, attempt, error, delay
            )
            return
        await self._fail(msg, envelope, attempt, started, error, type(exc).__name__, trace)

    async def _fail(
        self,
        msg: Msg,
        envelope: JobEnvelope,
        attempt: int,
        started: float | None,
        error: str,
        error_type: str,
        trace: str | None,
        *,
        dead_letter_reason: str | None = None,
    ) -> None:
        """Record a job's final failure, dead-letter it and ack it."""
        assert self._broker is not None
        self.failed += 1
        await self._broker.dead_letter(
            DeadLetter(
                job_id=envelope.id,
                queue=envelope.queue,
                reason=dead_letter_reason or f"failed after {attempt} attempt(s)",
                failed_at=time.time(),
                function=envelope.fn,
                error=error,
                error_type=error_type,
                traceback=trace,
                attempt=attempt,
                worker=self.name,
                payload=msg.data,
            )
        )
        payload = encode_result(
            self.settings,
            ResultRecord(
                job_id=envelope.id,
                status=JobStatus.FAILED,
                finished_at=time.time(),
                error=error,
                error_type=error_type,
                traceback=trace,
                worker=self.name,
                attempt=attempt,
                started_at=started,
            ),
        )
        await self._store_outcome(msg, envelope, payload, JobStatus.FAILED, attempt, started, error)
        log.info("job %s failed for good: %s", envelope.id, error)

    async def _refuse(
        self, msg: Msg, envelope: JobEnvelope, reason: str, error_type: str = "SecurityError"
    ) -> None:
        """Dead-letter a job that must not run (nothing was executed)."""
        await self._fail(
            msg,
            envelope,
            0,
            None,
            reason,
            error_type,
            None,
            dead_letter_reason=f"refused: {reason}",
        )

    async def _dead_letter(self, msg: Msg, queue: str, job_id: str | None, reason: str) -> None:
        """Move an undecodable message to the failed stream and ack it."""
        assert self._broker is not None
        self.failed += 1
        await self._broker.dead_letter(
            DeadLetter(
                job_id=job_id,
                queue=queue,
                reason=reason,
                failed_at=time.time(),
                worker=self.name,
                payload=msg.data,
            )
        )
        await msg.ack()
        log.warning("worker %s: dead-lettered a message from %s: %s", self.name, queue, reason)

    def _status(
        self,
        envelope: JobEnvelope,
        status: str,
        attempt: int,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        error: str | None = None,
        next_retry_at: float | None = None,
    ) -> StatusRecord:
        progress, message, meta = self._progress.get(envelope.id, (None, None, {}))
        return status_of(
            envelope,
            status,
            updated_at=time.time(),
            attempt=attempt,
            started_at=started_at,
            ended_at=ended_at,
            next_retry_at=next_retry_at,
            worker=self.name,
            error=error,
            meta={**envelope.meta, **meta},
            progress=progress,
            progress_message=message,
        )

    # -- liveness ------------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        # In-progress acks keep a long job from being redelivered while this worker lives.
        interval = max(0.2, self.settings.default_ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            for job in self._held_jobs():
                with contextlib.suppress(Exception):
                    await job.msg.in_progress()

    async def _heartbeat_loop(self, beating: bool) -> None:
        """Beat every ``heartbeat_interval``; after a missed beat (``beating`` false at
        first), try again sooner, backing off: a worker without a fresh record looks dead
        to ``naq workers``, the TUI and the recovery of its jobs."""
        retry = HEARTBEAT_RETRY
        delay = self.heartbeat_interval if beating else retry
        while True:
            await asyncio.sleep(delay)
            if await self._beat():
                delay, retry = self.heartbeat_interval, HEARTBEAT_RETRY
            else:
                delay, retry = retry, min(retry * 2, self.heartbeat_interval)

    async def _beat(self) -> bool:
        """One heartbeat; whether it was stored (a missed one is logged, the worker goes on)."""
        try:
            await self._heartbeat()
        except Exception as exc:
            log.warning("worker %s: heartbeat failed: %r", self.name, exc)
            return False
        return True

    async def _heartbeat(self) -> None:
        assert self._broker is not None
        if self.status != WorkerStatus.STOPPING:
            self.status = WorkerStatus.BUSY if self._running else WorkerStatus.IDLE
        record = WorkerRecord(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            status=self.status,
            concurrency=self.concurrency,
            started_at=self.started_at,
            heartbeat_at=time.time(),
            running=[job.job_id for job in self._running.values() if job.job_id],
            processed=self.processed,
            failed=self.failed,
            heartbeat_interval=self.heartbeat_interval,
            ttl=self.worker_ttl,
        )
        await self._broker.connection.wait_ack(await self._broker.put_worker(record))
