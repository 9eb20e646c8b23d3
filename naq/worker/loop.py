"""The Worker: its options, its run from start to stop, signals and remote control.

A run connects, makes the shared state and the parts that work on it (the feeder
takes jobs, the attempts run them, the outcomes store what came of them, liveness
keeps the worker and its jobs alive, metering reports what they add up to), and waits
for a stop: SIGTERM/SIGINT, a remote ``stop``, :meth:`Worker.request_stop` or, in burst
mode, empty queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from naq.broker import Broker
from naq.control import answer_control
from naq.errors import ConfigurationError
from naq.models import WorkerStatus
from naq.monitor import list_workers, list_workers_sync
from naq.names import validate_queue_name
from naq.settings import Settings, get_settings
from naq.stop_signals import install_stop_signals
from naq.store import JobStore
from naq.sync import set_threadsafe
from naq.transport import Msg, open_connection
from naq.worker.attempt import Attempts, Outcomes
from naq.worker.execution import Executor
from naq.worker.feeding import Feeder
from naq.worker.hooks import Hooks, check_middleware
from naq.worker.lifespan import Lifespan, bind_state, unbind_state
from naq.worker.liveness import Liveness
from naq.worker.rate import RateGates
from naq.worker.state import WorkerState
from naq.worker.usage import ProcessUsage

log = logging.getLogger("naq.worker")

#: Seconds between looks at the worker's memory when it has a ``max_memory``.
MEMORY_CHECK = 1.0


class Worker:
    """Runs jobs from one or more queues.

    ``Worker(queues, nats_url=None, concurrency=10, worker_name=None,
    heartbeat_interval=15, worker_ttl=60)`` plus keyword options ``burst``
    (exit once the queues are empty), ``module_paths`` (modules to import at
    start, e.g. those registering ``@naq.task`` functions), ``allowed_modules``
    (module prefixes jobs may import; checked before importing),
    ``shutdown_grace`` (seconds running jobs get to finish on SIGTERM), ``ack_wait``,
    ``lifespan`` (:mod:`naq.worker.lifespan`: set up once per run, read by jobs with
    :func:`naq.worker_state`), ``middleware`` (:mod:`naq.middleware`), ``max_jobs`` (stop
    gracefully once that many jobs have started) and ``max_memory`` (stop gracefully once
    the process's RSS passes that many MB): a process pool replaces a worker stopped by
    either. A worker on several queues takes their jobs strictly in the order given
    (while the first has a pending job, free slots go to it); ``fair=True`` shares the
    slots among them instead.

    ``ack_wait`` (seconds; default ``NAQ_DEFAULT_ACK_WAIT``) is how long JetStream waits
    for an ack before it hands a job to another worker (a running job's in-progress
    acks keep it). It belongs to the queue's durable consumer, which every worker of the
    queue shares: a worker given ``ack_wait`` creates the consumer with it, or updates an
    existing consumer whose ack wait differs (logged; lowering it while older workers with
    the longer one run means restarting those). A worker not given one leaves an existing
    consumer's ack wait as it is and paces its in-progress acks for the shorter of the two.

    Raises:
        ConfigurationError: a bad queue name or option (named in the message).
    """

    #: Workers whose heartbeat has not expired (:func:`naq.list_workers`).
    list_workers = staticmethod(list_workers)
    #: Blocking form of :meth:`list_workers` (:func:`naq.list_workers_sync`).
    list_workers_sync = staticmethod(list_workers_sync)

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
        ack_wait: float | None = None,
        lifespan: Callable[[Worker], Any] | None = None,
        middleware: Sequence[object] = (),
        max_jobs: int | None = None,
        max_memory: float | None = None,
        fair: bool = False,
        settings: Settings | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        # Kept for replace(): the options as given, before defaults are filled in.
        self._options: dict[str, Any] = {
            name: value for name, value in locals().items() if name not in ("self", "__class__")
        }
        base = (settings or get_settings()).replace(nats_url=nats_url)
        if allowed_modules is not None:
            base = base.replace(allowed_modules=tuple(allowed_modules))
        if ack_wait is not None:
            if (
                isinstance(ack_wait, bool)
                or not isinstance(ack_wait, (int, float))
                or not 0 < ack_wait < math.inf
            ):
                raise ConfigurationError(f"ack_wait={ack_wait!r} must be a number of seconds > 0")
            base = base.replace(default_ack_wait=float(ack_wait))
        # Given, it is made the queues' consumers' own (the class docstring says when).
        self._sets_ack_wait = ack_wait is not None
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
        if lifespan is not None and not callable(lifespan):
            raise ConfigurationError(
                f"lifespan={lifespan!r} must be a function of the worker returning a context "
                "manager"
            )
        self.lifespan = lifespan
        self.middleware = check_middleware(middleware)
        if max_jobs is not None and (
            isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1
        ):
            raise ConfigurationError(f"max_jobs={max_jobs!r} must be an integer >= 1")
        self.max_jobs = max_jobs
        if max_memory is not None and (
            isinstance(max_memory, bool)
            or not isinstance(max_memory, (int, float))
            or not 0 < max_memory < math.inf
        ):
            raise ConfigurationError(f"max_memory={max_memory!r} must be a number of MB > 0")
        self.max_memory = None if max_memory is None else float(max_memory)
        self.fair = bool(fair)
        self.started_at = time.time()
        #: The current (or last) run's state; None before the first run.
        self._state: WorkerState | None = None
        self._stopping: asyncio.Event | None = None  # made in run(): needs the loop
        self._event_loop: asyncio.AbstractEventLoop | None = None
        #: The current (or last) run's parts.
        self._feeder: Feeder | None = None
        self._attempts: Attempts | None = None
        self._outcomes: Outcomes | None = None
        self._liveness: Liveness | None = None
        self._gates: RateGates | None = None
        self._signals = 0

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, queues={self.queues!r}, concurrency={self.concurrency})"

    @property
    def ack_wait(self) -> float:
        """The ack wait (seconds) this worker asks of its queues' consumers."""
        return self.settings.default_ack_wait

    @property
    def status(self) -> str:
        """``starting``, ``idle``, ``busy`` or ``stopping`` (as the last heartbeat said)."""
        return self._state.status if self._state is not None else WorkerStatus.STARTING

    @property
    def processed(self) -> int:
        """Jobs this worker completed."""
        return self._state.processed if self._state is not None else 0

    @property
    def failed(self) -> int:
        """Jobs this worker failed for good or dead-lettered."""
        return self._state.failed if self._state is not None else 0

    def replace(self, **changes: Any) -> Worker:
        """A new worker with this one's options, ``changes`` applied (the same names as
        the constructor's)."""
        return Worker(**{**self._options, **changes})

    # -- lifecycle -----------------------------------------------------------

    def run_sync(self) -> None:
        """Run the worker in this thread until it stops (blocking form of :meth:`run`)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        """Connect, take and run jobs until stopped (or, in burst mode, until idle).

        Raises:
            NaqConnectionError: NATS can't be reached at start.
        """
        self._stopping = asyncio.Event()
        self._event_loop = asyncio.get_running_loop()
        for module in self.module_paths:
            importlib.import_module(module)
        lifespan = Lifespan(self.lifespan, self)
        app_state = await lifespan.enter()
        token = bind_state(app_state)
        hooks = Hooks(self.middleware) if self.middleware else None
        try:
            await self._run(app_state, hooks)
        finally:
            if hooks is not None:
                await hooks.worker_stopped(self)
            await lifespan.exit()
            unbind_state(token)

    async def _run(self, app_state: dict[str, Any], hooks: Hooks | None) -> None:
        stopping, loop = self._stopping, self._event_loop
        assert stopping is not None and loop is not None
        connection = await open_connection(
            self.settings,
            name=f"naq-worker-{self.name}",
            on_reconnect=self._on_reconnect,
        )
        broker = Broker(connection, self.settings)
        previous = self._state
        self._state = state = WorkerState(
            settings=self.settings,
            name=self.name,
            queues=self.queues,
            concurrency=self.concurrency,
            broker=broker,
            store=JobStore(broker),
            loop=loop,
            stopping=stopping,
            sets_ack_wait=self._sets_ack_wait,
            processed=previous.processed if previous else 0,
            failed=previous.failed if previous else 0,
            hooks=hooks,
            app_state=app_state,
            jobs_left=self.max_jobs,
            strict_order=not self.fair,
        )
        self._gates = gates = RateGates(broker, self.queues, state.gates)
        executor = Executor(self.concurrency)
        self._outcomes = outcomes = Outcomes(state)
        self._liveness = liveness = Liveness(
            state,
            outcomes.status,
            heartbeat_interval=self.heartbeat_interval,
            worker_ttl=self.worker_ttl,
            started_at=self.started_at,
        )
        self._attempts = attempts = Attempts(state, executor, outcomes, liveness)
        self._feeder = feeder = Feeder(state, attempts.start)
        self._install_signals()
        loops: list[asyncio.Task[Any]] = []
        try:
            await feeder.start()
            await gates.start()
            await broker.ensure_failed_stream()
            await broker.status_kv()
            await broker.results_kv()
            # Know every cancellation and parked dependent before taking a job.
            await broker.cancelled_kv()
            await state.store.parking.waiting_kv()
            await state.store.prepare()
            names = broker.names
            loops.append(await broker.mirror(names.cancelled_bucket, attempts.on_cancelled))
            loops.append(await broker.mirror(names.waiting_bucket, outcomes.on_waiting))
            await connection.subscribe(names.worker_control_subject(self.name), self._on_control)
            state.status = WorkerStatus.IDLE
            # Missed e.g. while a cluster elects the workers bucket's leader: the loop retries.
            beating = await liveness.beat()
            log.info(
                "worker %s started on %s (concurrency %d)",
                self.name,
                ", ".join(self.queues),
                self.concurrency,
            )
            if hooks is not None:
                await hooks.worker_started(self)
            if self.max_memory is not None:
                loops.append(asyncio.create_task(self._watch_memory(self.max_memory)))
            loops.append(asyncio.create_task(feeder.run()))
            loops.append(asyncio.create_task(liveness.heartbeat_loop(beating)))
            loops.append(asyncio.create_task(liveness.keepalive_loop()))
            if state.metering.enabled:
                loops.append(asyncio.create_task(state.metering.run()))
            if self.burst:
                loops.append(asyncio.create_task(feeder.burst_watch()))
            await stopping.wait()
        finally:
            await self._shutdown(state, feeder, liveness, executor, loops)

    async def _watch_memory(self, limit_mb: float) -> None:
        usage = ProcessUsage()
        while True:
            await asyncio.sleep(MEMORY_CHECK)
            rss = usage.rss_bytes()
            if rss is not None and rss > limit_mb * 1024 * 1024:
                log.info(
                    "worker %s: memory %.0f MB is past max_memory %g MB, stopping",
                    self.name,
                    rss / 1024 / 1024,
                    limit_mb,
                )
                self.request_stop()
                return

    def request_stop(self) -> None:
        """Ask the worker to stop gracefully (same as SIGTERM); safe from any thread."""
        if self._stopping is not None and self._event_loop is not None:
            set_threadsafe(self._stopping, self._event_loop)

    async def stop(self) -> None:
        """Ask the worker to stop gracefully."""
        self.request_stop()

    def _install_signals(self) -> None:
        if self.install_signal_handlers:
            install_stop_signals(self._on_signal)

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

    async def _shutdown(
        self,
        state: WorkerState,
        feeder: Feeder,
        liveness: Liveness,
        executor: Executor,
        loops: list[asyncio.Task[Any]],
    ) -> None:
        state.status = WorkerStatus.STOPPING
        await feeder.stop()
        # Jobs that never got a slot go back at once (one arriving later goes back as it comes).
        while state.backlog:
            _, msg = state.backlog.popleft()
            with contextlib.suppress(Exception):
                await msg.nak()
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await liveness.heartbeat()
        running = [job.task for job in state.held_jobs() if job.task is not None]
        if running:
            log.info(
                "worker %s: waiting up to %gs for %d running job(s)",
                self.name,
                self.shutdown_grace,
                len(running),
            )
            done, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for job in state.held_jobs():
                if job.task in pending:
                    # Hand the job back now rather than after the ack wait.
                    with contextlib.suppress(Exception):
                        await job.msg.nak()
                    job.task.cancel()  # type: ignore[union-attr]
        executor.shutdown()
        # Every outcome is stored by now: what they add up to goes out before the connection.
        await state.metering.flush()
        with contextlib.suppress(Exception):
            kv = await state.broker.workers_kv()
            await kv.delete(self.name)
        liveness.stop()
        await state.broker.connection.close()
        log.info(
            "worker %s stopped (%d processed, %d failed)%s",
            self.name,
            state.processed,
            state.failed,
            state.busy_summary(),
        )

    # -- remote control ----------------------------------------------------------

    async def _on_control(self, msg: Msg) -> None:
        await answer_control(msg, self._stop_remotely)

    def _stop_remotely(self) -> None:
        log.info("worker %s: stop requested remotely", self.name)
        self.request_stop()

    async def _on_reconnect(self) -> None:
        # Pull requests die with the old connection: ask again from scratch.
        log.info("worker %s reconnected to NATS", self.name)
        if self._feeder is not None:
            self._feeder.reset()
        if self._gates is not None:
            await self._gates.refresh_all()
