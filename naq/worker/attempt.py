"""One attempt at a job: the delivered message checked, its function run, its outcome stored.

:class:`Attempts` takes a delivered message through the attempt (decode, refuse or skip
what must not run, run the function); :class:`Outcomes` stores what came of it: the
result (the first stored wins), the status, a retry, a dead letter, the release of the
job's dependents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from naq import tracing
from naq.broker import decode_or_none
from naq.context import JobContext, bind
from naq.dependencies import job_ended
from naq.errors import JobCancelledError, NaqException, SecurityError, SerializationError
from naq.job import with_task_defaults
from naq.middleware import JobOutcome
from naq.models import (
    DeadLetter,
    JobEnvelope,
    JobStatus,
    ResultRecord,
    StatusRecord,
    attempts_before_next,
    decode_envelope,
    status_of,
    waiting_decoder,
)
from naq.pickled_jobs import load_call
from naq.results import encode_result
from naq.retry import retry_delay, should_retry
from naq.security import check_signature
from naq.serialization import convert_arguments, resolve_function, stored_result
from naq.transport import Msg
from naq.worker.execution import Executor
from naq.worker.liveness import Liveness
from naq.worker.rate import RateGate
from naq.worker.state import RunningJob, WorkerState
from naq.worker.tracebacks import job_traceback

log = logging.getLogger("naq.worker")


def cancelled(job_id: str) -> JobCancelledError:
    """The error a cancelled job's hooks and ``on_stopped`` callback are given."""
    return JobCancelledError(f"job {job_id} was cancelled", job_id=job_id, error="cancelled")


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


class Attempts:
    """Runs each delivered message's job in a slot of the worker.

    The parts of the shared state a job touches are kept here as references, so the
    per-job path reaches them in one step.
    """

    def __init__(
        self, state: WorkerState, executor: Executor, outcomes: Outcomes, liveness: Liveness
    ) -> None:
        self._state = state
        self._settings = state.settings
        self._broker = state.broker
        self._store = state.store
        self._name = state.name
        self._concurrency = state.concurrency
        self._many_queues = len(state.queues) > 1
        self._running = state.running
        self._recording = state.recording
        self._backlog = state.backlog
        self._progress = state.progress
        self._earlier = state.earlier_attempts
        self._wake = state.wake
        self._idle = state.idle
        self._stopping = state.stopping
        self._executor = executor
        self._outcomes = outcomes
        self._store_outcome = outcomes.store_outcome
        self._result_payload = outcomes.result_payload
        self._status = outcomes.status
        self._announce_delay = state.settings.running_status_delay
        self._announce = liveness.announce
        #: Jobs cancelled (as the cancelled bucket says): skipped if delivered.
        self._cancelled: set[str] = set()
        self._functions: dict[tuple[str, str | None], Any] = {}
        self._hooks = state.hooks
        self._gates = state.gates
        self._callbacks = state.callbacks
        tracing.configure()  # decided once a run: each job only reads the answer

    def start(self, queue: str, msg: Msg) -> None:
        """Run the job of a message delivered from ``queue`` in a free slot (or, if none
        is free, in the next one that frees)."""
        if self._stopping.is_set():
            # Arrived while stopping: hand it straight back.
            asyncio.ensure_future(msg.nak())
            return
        if len(self._running) >= self._concurrency:
            # More came than was asked for (several queues watched for one slot).
            self._backlog.append((queue, msg))
            return
        key = msg.reply or str(id(msg))
        running = RunningJob(msg=msg, job_id="", queue=queue, key=key)
        self._running[key] = running
        if self._many_queues and len(self._running) >= self._concurrency:
            self._wake.set()  # the last free slot is taken: the feeder calls off its watches
        state = self._state
        if state.first_started is None:
            state.first_started = time.monotonic()
        if state.jobs_left is not None:
            state.jobs_left -= 1
            if state.jobs_left <= 0:
                # Its last job: it stops (that job finishes) to be replaced by a fresh one.
                log.info("worker %s: started its last job (max_jobs), stopping", self._name)
                self._stopping.set()
        self._idle.clear()
        running.task = asyncio.create_task(self._process(key, running))

    def on_cancelled(self, job_id: str, value: bytes | None) -> None:
        """Follows the cancelled bucket: a running job cancelled there is stopped."""
        if value is None:
            self._cancelled.discard(job_id)
            return
        self._cancelled.add(job_id)
        for running in self._running.values():
            if running.job_id == job_id and running.task is not None:
                running.cancel_requested = True
                running.task.cancel()

    async def _process(self, key: str, running: RunningJob) -> None:
        try:
            gate = self._gates.get(running.queue) if self._gates else None
            if gate is None or await self._turn_came(gate, running):
                await self._handle(running)
        except asyncio.CancelledError:
            if not running.cancel_requested:
                raise
            await self._outcomes.finish_cancelled(running)
            await self._ended(running, JobStatus.CANCELLED, None, cancelled(running.job_id))
        except Exception:
            # A bug here must not kill the worker; the message is redelivered after the ack wait.
            log.exception("worker %s: unexpected error handling a message", self._name)
        finally:
            # The job and its task refer to each other (and its context to both): cut that
            # here, so they are freed at once rather than by the garbage collector.
            running.task = None
            self._running.pop(key, None)
            self._recording.pop(key, None)
            self._progress.pop(running.job_id, None)
            self._earlier.pop(running.job_id, None)
            self._state.last_ended = time.monotonic()
            if self._backlog and len(self._running) < self._concurrency:
                self.start(*self._backlog.popleft())
            if not self._running and not self._recording:
                self._idle.set()
            self._wake.set()

    async def _turn_came(self, gate: RateGate, running: RunningJob) -> bool:
        """Wait for the job's turn under its queue's rate; False if it went back instead
        (the worker stops meanwhile, or the turn could not be taken)."""
        try:
            await gate.wait_turn()
        except NaqException as exc:
            log.warning("worker %s: queue %s's rate: %s", self._name, running.queue, exc)
            await running.msg.nak(delay=1.0)
            return False
        self._wake.set()  # its gate holds one fewer: the feeder may fetch the next
        if self._stopping.is_set():
            await running.msg.nak()
            return False
        return True

    def _function_returned(self, running: RunningJob) -> None:
        """Free the job's slot: what is left is storing its outcome."""
        if self._running.pop(running.key, None) is not None:
            self._recording[running.key] = running
            if self._backlog:
                self.start(*self._backlog.popleft())
            self._wake.set()

    async def _handle(self, running: RunningJob) -> None:
        store = self._store
        outcomes = self._outcomes
        msg = running.msg
        delivered = delivery_count(msg)
        try:
            check_signature(self._settings, msg.data, msg.headers)
        except SecurityError as exc:
            await outcomes.dead_letter(msg, running.queue, None, f"refused: {exc}")
            return
        try:
            envelope = with_task_defaults(decode_envelope(msg.data))
            if envelope.queue != running.queue:
                raise SerializationError(
                    f"job names queue {envelope.queue!r} but arrived on {running.queue!r}"
                )
        except SerializationError as exc:
            await outcomes.dead_letter(msg, running.queue, None, f"malformed message: {exc}")
            return
        running.job_id = envelope.id
        running.envelope = envelope
        if envelope.id in self._cancelled:
            # Cancelled while pending: whoever cancelled it recorded the outcome; its
            # dependents are settled (again) before the message goes.
            await outcomes.job_ended(envelope.id)
            await msg.ack()
            if envelope.on_stopped is not None:
                await self._callbacks.run(envelope, JobStatus.CANCELLED, cancelled(envelope.id))
            return
        if envelope.serializer == "pickle" and self._settings.job_serializer != "pickle":
            await outcomes.refuse(
                msg,
                envelope,
                "pickled payload refused: this worker only accepts JSON jobs "
                "(set NAQ_JOB_SERIALIZER=pickle on trusted deployments)",
            )
            return
        previous: StatusRecord | None = None
        if delivered > 1:
            previous, result = await asyncio.gather(
                self._broker.read_status(envelope.id), store.read_result(envelope.id)
            )
            if result is not None:
                # Delivered again after it ended (its worker died before the ack, or the
                # ack got lost): never run twice, but finish what its end still owed —
                # the status, and the release of its dependents.
                if previous is None or previous.status not in JobStatus.ENDED:
                    await store.align(envelope.id)
                await outcomes.job_ended(envelope.id)
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
            self._earlier[envelope.id] = attempts_before_next(previous)
        if delivered > envelope.max_retries + 1 + self._settings.max_crash_redeliveries:
            reason = f"delivered {delivered} times without finishing (worker crashes?)"
            await outcomes.fail(
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
            if envelope.serializer == "pickle":
                func, args, kwargs = self._unpickled(envelope)
            else:
                func = self._function(envelope)
                args, kwargs = convert_arguments(func, envelope.args, envelope.kwargs)
        except (SecurityError, SerializationError) as exc:
            await outcomes.refuse(msg, envelope, str(exc), type(exc).__name__)
            return
        started = time.time()
        if self._announce_delay > 0:
            # Written by the liveness sweep if the job is still running by then.
            self._announce(running, envelope, attempt, started)
        else:
            record = self._status(envelope, JobStatus.RUNNING, attempt, started_at=started)
            # The outcome written later on the same connection follows it in order.
            await store.running(record)
        running.context = context = self._context(running, envelope, attempt, started)
        context.args, context.kwargs = args, kwargs
        bind(context)
        hooks = self._hooks
        with tracing.attempt_span(envelope, msg.headers, attempt) as span:
            failure: Exception | None = None
            value: Any = None
            try:
                timeout = envelope.timeout
                if hooks is not None and hooks.before:
                    timeout = await hooks.run_before(context, timeout)
                value = await self._executor.run(func, args, kwargs, timeout)
                payload = self._result_payload(envelope, value, attempt, started)
            except Exception as exc:
                failure = exc
            finally:
                # Before any outcome is written, success or failure: a running status still due
                # must not land after it. A job ended sooner goes from pending to its outcome.
                running.announcement = None
                self._function_returned(running)
            if failure is not None:
                outcome = await outcomes.failed_attempt(msg, envelope, attempt, started, failure)
                tracing.set_outcome(span, outcome, failure)
            else:
                await self._store_outcome(
                    msg, envelope, payload, JobStatus.COMPLETED, attempt, started
                )
                tracing.set_outcome(span, JobStatus.COMPLETED)
                self._state.processed += 1
                outcome = JobStatus.COMPLETED
        if hooks is not None or envelope.on_success or envelope.on_failure:
            await self._ended(running, outcome, value, failure)

    async def _ended(
        self, running: RunningJob, status: str, value: Any, error: BaseException | None
    ) -> None:
        """After an attempt's outcome is stored: the middleware's hooks, then the job's
        callback for how it ended."""
        context, envelope = running.context, running.envelope
        if context is None or envelope is None:
            return
        if self._hooks is not None:
            retrying = status == JobStatus.RETRY
            outcome = JobOutcome(
                status=JobStatus.FAILED if retrying else status,
                result=value if error is None else None,
                error=error,
                will_retry=retrying,
                duration=time.time() - running.started_at,
            )
            await self._hooks.attempt_ended(context, outcome)
        await self._callbacks.run(envelope, status, value if error is None else error)

    def _function(self, envelope: JobEnvelope) -> Any:
        """The job's function; resolved (and checked against allowed_modules) once."""
        key = (envelope.fn, envelope.module)
        func = self._functions.get(key)
        if func is None:
            func = resolve_function(envelope.fn, envelope.module, self._settings.allowed_modules)
            self._functions[key] = func
        return func

    def _unpickled(self, envelope: JobEnvelope) -> tuple[Any, list[Any], dict[str, Any]]:
        """A pickled job's function (sent by value, or by the name it resolves) and
        arguments, with allowed_modules in force."""
        allowed = self._settings.allowed_modules
        func, args, kwargs = load_call(envelope.pickled or b"", envelope.module, allowed)
        if isinstance(func, str):  # enqueued by task name or import path
            func = resolve_function(func, envelope.module, allowed)
        return func, list(args), kwargs

    def _context(
        self, running: RunningJob, envelope: JobEnvelope, attempt: int, started: float
    ) -> JobContext:
        store = self._store
        progress = self._progress
        status = self._status

        async def report(value: float | None, message: str | None, meta: dict[str, Any]) -> None:
            progress[envelope.id] = (value, message, meta)
            # This write says it runs: the delayed one is not needed any more.
            running.announcement = None
            record = status(envelope, JobStatus.RUNNING, attempt, started_at=started)
            await store.running(record)

        return JobContext(
            job_id=envelope.id,
            queue=envelope.queue,
            attempt=attempt,
            worker=self._name,
            meta=dict(envelope.meta),
            function=envelope.fn,
            state=self._state.app_state,
            _report=report,
            _loop=self._state.loop,
        )


class Outcomes:
    """Stores what came of an attempt, and releases the dependents of a job that ended.

    Keeps the index of the jobs parked on each dependency (from the waiting bucket), so
    only an end that has dependents costs a look at them.
    """

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self._settings = state.settings
        self._broker = state.broker
        self._store = state.store
        self._name = state.name
        self._progress = state.progress
        self._earlier = state.earlier_attempts
        self._metered = state.metering.ended
        #: dependency id -> parked jobs waiting on it, and the reverse.
        self._dependents: dict[str, set[str]] = {}
        self._waiting: dict[str, list[str]] = {}

    def status(
        self,
        envelope: JobEnvelope,
        status: str,
        attempt: int,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        error: str | None = None,
        error_type: str | None = None,
        next_retry_at: float | None = None,
    ) -> StatusRecord:
        """The job's status record as this worker writes it (with its last progress, and
        the attempts before this one)."""
        progress, message, meta = self._progress.get(envelope.id, (None, None, {}))
        return status_of(
            envelope,
            status,
            updated_at=time.time(),
            attempt=attempt,
            started_at=started_at,
            ended_at=ended_at,
            next_retry_at=next_retry_at,
            worker=self._name,
            error=error,
            error_type=error_type,
            meta={**envelope.meta, **meta},
            progress=progress,
            progress_message=message,
            earlier_attempts=self._earlier.get(envelope.id) or [],
        )

    def result_payload(
        self, envelope: JobEnvelope, value: Any, attempt: int, started: float
    ) -> bytes:
        """The encoded result record of a completed attempt that returned ``value``."""
        value, pickled = stored_result(envelope.serializer, value)
        return encode_result(
            self._settings,
            ResultRecord(
                job_id=envelope.id,
                status=JobStatus.COMPLETED,
                finished_at=time.time(),
                result=value,
                pickled=pickled,
                worker=self._name,
                attempt=attempt,
                started_at=started,
            ),
        )

    async def store_outcome(
        self,
        msg: Msg,
        envelope: JobEnvelope,
        payload: bytes,
        status: str,
        attempt: int,
        started: float | None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """Store the job's outcome (unless one was stored first), release its dependents,
        then ack it."""
        record = self.status(
            envelope,
            status,
            attempt,
            started_at=started,
            ended_at=time.time(),
            error=error,
            error_type=error_type,
        )
        try:
            # Lost to an earlier outcome (e.g. a cancellation): that one stands.
            won = await self._store.store_outcome(payload, record, envelope.result_ttl)
            self._metered(envelope, status if won else "", started, record.ended_at)
            # Dependents before the ack: killed in between, the job is delivered again
            # and its redelivery releases them.
            if envelope.id in self._dependents:
                await self.job_ended(envelope.id)
        except NaqException as exc:
            # Not done: leave the message unacked so it is delivered again.
            log.error("worker %s: storing the outcome of %s: %s", self._name, envelope.id, exc)
            return
        self._store.connection.ack(msg)

    async def finish_cancelled(self, running: RunningJob) -> None:
        """Record a job cancelled while it ran (its result, if any, is discarded)."""
        try:
            await self._store.end(running.job_id, JobStatus.CANCELLED, error="cancelled")
            if running.envelope is not None:
                self._metered(running.envelope, JobStatus.CANCELLED, None, None)
            await self.job_ended(running.job_id)
        except NaqException as exc:
            # Left unacked: delivered again, it is skipped as cancelled and settled then.
            log.error("worker %s: cancelling %s: %s", self._name, running.job_id, exc)
            return
        with contextlib.suppress(Exception):
            await running.msg.ack()
        log.info("job %s cancelled while running", running.job_id)

    async def job_ended(self, job_id: str) -> None:
        """Settle the jobs parked on ``job_id`` (known from the mirrored waiting bucket,
        so a job nobody waits on costs nothing here)."""
        dependents = self._dependents.get(job_id)
        if dependents:
            await job_ended(self._store, job_id, sorted(dependents))

    def on_waiting(self, job_id: str, value: bytes | None) -> None:
        """Follows the waiting bucket: which parked job waits on which dependencies."""
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

    async def failed_attempt(
        self, msg: Msg, envelope: JobEnvelope, attempt: int, started: float, exc: Exception
    ) -> JobStatus:
        """Retry the job after its policy's delay, or fail it for good; says which."""
        error = f"{type(exc).__name__}: {exc}"
        trace = job_traceback(exc)
        if should_retry(exc, attempt, envelope.max_retries, envelope.retry_on, envelope.ignore_on):
            delay = retry_delay(
                attempt, envelope.retry_delay, envelope.retry_strategy, envelope.retry_jitter
            )
            record = self.status(
                envelope,
                JobStatus.RETRY,
                attempt,
                started_at=started,
                ended_at=time.time(),
                error=error,
                error_type=type(exc).__name__,
                next_retry_at=time.time() + delay,
            )
            await self._store.retrying(record)
            self._metered(envelope, JobStatus.RETRY, started, record.ended_at)
            await msg.nak(delay=delay if delay > 0 else None)
            log.info(
                "job %s attempt %d failed (%s); retry in %.2fs", envelope.id, attempt, error, delay
            )
            return JobStatus.RETRY
        await self.fail(msg, envelope, attempt, started, error, type(exc).__name__, trace)
        return JobStatus.FAILED

    async def fail(
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
        self._state.failed += 1
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
                worker=self._name,
                payload=msg.data,
            )
        )
        payload = encode_result(
            self._settings,
            ResultRecord(
                job_id=envelope.id,
                status=JobStatus.FAILED,
                finished_at=time.time(),
                error=error,
                error_type=error_type,
                traceback=trace,
                worker=self._name,
                attempt=attempt,
                started_at=started,
            ),
        )
        await self.store_outcome(
            msg, envelope, payload, JobStatus.FAILED, attempt, started, error, error_type
        )
        log.info("job %s failed for good: %s", envelope.id, error)

    async def refuse(
        self, msg: Msg, envelope: JobEnvelope, reason: str, error_type: str = "SecurityError"
    ) -> None:
        """Dead-letter a job that must not run (nothing was executed)."""
        await self.fail(
            msg,
            envelope,
            0,
            None,
            reason,
            error_type,
            None,
            dead_letter_reason=f"refused: {reason}",
        )

    async def dead_letter(self, msg: Msg, queue: str, job_id: str | None, reason: str) -> None:
        """Move an undecodable message to the failed stream and ack it."""
        self._state.failed += 1
        await self._broker.dead_letter(
            DeadLetter(
                job_id=job_id,
                queue=queue,
                reason=reason,
                failed_at=time.time(),
                worker=self._name,
                payload=msg.data,
            )
        )
        await msg.ack()
        log.warning("worker %s: dead-lettered a message from %s: %s", self._name, queue, reason)
