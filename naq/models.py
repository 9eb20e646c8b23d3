"""Wire models: the msgspec Structs naq writes to NATS.

Every record is frozen and keyword-only; fields added later get defaults so
older messages still decode. One encoder and one decoder per type, made once.
Times are UNIX seconds (float, UTC). The records' status values are the enums of
:mod:`naq.statuses`, importable from here too.
"""

from __future__ import annotations

from typing import Any

import msgspec

from naq.errors import ConfigurationError, InvalidQueueNameError, SerializationError
from naq.names import validate_job_id, validate_queue_name
from naq.settings import MAX_TTL_SECONDS
from naq.statuses import JobStatus as JobStatus
from naq.statuses import ScheduleStatus
from naq.statuses import WorkerStatus as WorkerStatus

#: Format version of the job envelope.
ENVELOPE_VERSION = 1


class JobEnvelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job as it travels on a queue subject."""

    id: str
    fn: str
    queue: str
    enqueued_at: float
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    #: Module to import to find ``fn`` when it is a registered task name.
    module: str | None = None
    max_retries: int = 0
    retry_delay: float | list[float] = 0.0
    retry_strategy: str = "fixed"
    retry_jitter: float = 0.0
    retry_on: list[str] = []
    ignore_on: list[str] = []
    timeout: float | None = None
    result_ttl: int | None = None
    depends_on: list[str] = []
    meta: dict[str, Any] = {}
    serializer: str = "json"
    #: cloudpickled ``(func, args, kwargs)`` when ``serializer == "pickle"``.
    pickled: bytes | None = None
    #: For a task enqueued by name: the job options its producer set. The worker gives
    #: every other option the task's registered default.
    options: list[str] = []
    #: Import paths of the functions the worker calls once the job's outcome is stored.
    on_success: str | None = None
    on_failure: str | None = None
    on_stopped: str | None = None
    v: int = ENVELOPE_VERSION


class AttemptEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One attempt at a job that is over (or was cut short by its worker's death)."""

    attempt: int
    worker: str | None = None
    started_at: float | None = None
    #: None for an attempt whose worker died while it ran.
    ended_at: float | None = None
    error_type: str | None = None
    error: str | None = None


class StatusRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The current state of a job, kept in the job-status bucket under its id.

    Its ``attempt``, ``worker``, ``started_at``, ``ended_at``, ``error`` and ``error_type``
    describe the current (or last) attempt; ``earlier_attempts`` the ones before it.
    """

    job_id: str
    status: str
    queue: str
    function: str
    enqueued_at: float
    updated_at: float
    attempt: int = 0
    max_retries: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    next_retry_at: float | None = None
    worker: str | None = None
    error: str | None = None
    #: The exception class of a failed attempt's error.
    error_type: str | None = None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    depends_on: list[str] = []
    #: Fraction done (0..1) reported by the job, and a message to go with it.
    progress: float | None = None
    progress_message: str | None = None
    #: The attempts before the current one, oldest first (a job run once has none).
    earlier_attempts: list[AttemptEntry] = []


#: Attempts a status record keeps before its current one (the newest), and the longest
#: error text each of them keeps: a job retried without end must not outgrow a message.
MAX_EARLIER_ATTEMPTS = 100
MAX_ATTEMPT_ERROR = 1000


def current_attempt(record: StatusRecord) -> AttemptEntry | None:
    """The attempt ``record`` describes now; None before the job first started."""
    if record.started_at is None or record.attempt < 1:
        return None
    return AttemptEntry(
        attempt=record.attempt,
        worker=record.worker,
        started_at=record.started_at,
        ended_at=record.ended_at,
        error_type=record.error_type,
        error=record.error,
    )


def attempts_before_next(previous: StatusRecord) -> list[AttemptEntry]:
    """The attempts a job's next attempt carries in its status, from the job's last
    status ``previous``: its earlier ones and its current one (the newest kept).

    The current one is missing its end when its worker died while it ran; an attempt
    whose worker died before its running status was written is not there at all.
    """
    last = current_attempt(previous)
    if last is None:
        return previous.earlier_attempts[-MAX_EARLIER_ATTEMPTS:]
    if last.error is not None and len(last.error) > MAX_ATTEMPT_ERROR:
        last = msgspec.structs.replace(last, error=last.error[: MAX_ATTEMPT_ERROR - 1] + "…")
    return [*previous.earlier_attempts, last][-MAX_EARLIER_ATTEMPTS:]


def status_of(envelope: JobEnvelope, status: str, **fields: Any) -> StatusRecord:
    """A status record for the job ``envelope`` carries; ``fields`` set the rest
    (``updated_at`` defaults to ``enqueued_at``)."""
    fields.setdefault("updated_at", envelope.enqueued_at)
    fields.setdefault("meta", envelope.meta)
    return StatusRecord(
        job_id=envelope.id,
        status=status,
        queue=envelope.queue,
        function=envelope.fn,
        enqueued_at=envelope.enqueued_at,
        max_retries=envelope.max_retries,
        args=envelope.args,
        kwargs=envelope.kwargs,
        depends_on=envelope.depends_on,
        **fields,
    )


class ResultRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of a job, kept in the results bucket under its id (first write wins)."""

    job_id: str
    status: str
    finished_at: float
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    worker: str | None = None
    attempt: int = 0
    started_at: float | None = None
    #: cloudpickled result, only with the pickle serializer.
    pickled: bytes | None = None
    #: ``SealedOutcome`` encrypted with the result key (value, error and traceback then empty).
    sealed: bytes | None = None


class SealedOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The secret part of a result, encrypted at rest when a result key is set."""

    result: Any = None
    error: str | None = None
    traceback: str | None = None
    pickled: bytes | None = None


class WaitingJob(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job parked until its dependencies complete, keyed by its id."""

    job_id: str
    queue: str
    waiting_on: list[str]
    #: The job message exactly as it will be published, and its headers.
    payload: bytes
    headers: dict[str, str] = {}
    created_at: float = 0.0


class WorkerRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A worker's heartbeat in the workers bucket."""

    name: str
    host: str
    pid: int
    queues: list[str]
    status: str
    concurrency: int
    started_at: float
    heartbeat_at: float
    running: list[str] = []
    processed: int = 0
    failed: int = 0
    heartbeat_interval: float = 15.0
    ttl: float = 60.0
    #: CPU time the process used since its previous heartbeat, in % of one core.
    cpu_percent: float | None = None
    #: Resident memory of the process (bytes).
    rss_bytes: int | None = None
    #: Whether it shares its slots among its queues in turn (else strictly in their order).
    fair: bool = False


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A job moved to the failed stream, with why."""

    job_id: str | None
    queue: str
    reason: str
    failed_at: float
    function: str | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    attempt: int = 0
    worker: str | None = None
    #: The original message bytes, exactly as they were on the queue subject.
    payload: bytes = b""


envelope_encoder = msgspec.json.Encoder()
envelope_decoder = msgspec.json.Decoder(JobEnvelope)
status_decoder = msgspec.json.Decoder(StatusRecord)


def decode_envelope(data: bytes) -> JobEnvelope:
    """Decode a job envelope from the bytes on a queue subject, and check its names.

    The id and queue name become KV keys and subjects, so bytes that decode but
    name an impossible id or queue are refused here, before anything is written.

    Raises:
        SerializationError: the bytes are not a naq job (the message says why).
    """
    try:
        envelope = envelope_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SerializationError(f"not a naq job envelope: {exc}") from None
    except RecursionError:
        # msgspec decodes nested arrays recursively: absurd nesting is not a job.
        raise SerializationError("not a naq job envelope: nested too deeply") from None
    try:
        validate_job_id(envelope.id)
        validate_queue_name(envelope.queue)
    except (ConfigurationError, InvalidQueueNameError) as exc:
        raise SerializationError(f"not a naq job envelope: {exc}") from None
    ttl = envelope.result_ttl
    if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
        # The result could never be stored: the job would be delivered again forever.
        raise SerializationError(
            f"not a naq job envelope: result_ttl={ttl!r} is not from 1 to {MAX_TTL_SECONDS}"
        )
    return envelope


result_decoder = msgspec.json.Decoder(ResultRecord)
worker_decoder = msgspec.json.Decoder(WorkerRecord)
dead_letter_decoder = msgspec.json.Decoder(DeadLetter)
#: Encoder for naq's own records (never user values: those go through serialization).
record_encoder = msgspec.json.Encoder()


class ScheduleRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A delayed or recurring job in the scheduled-jobs bucket, keyed by its id."""

    schedule_id: str
    queue: str
    #: The job to enqueue at each run (its id is replaced per run).
    job: JobEnvelope
    #: Next due time (UNIX seconds, UTC).
    next_run: float
    created_at: float
    # The plain string: omit_defaults leaves out a value identical to the default.
    status: str = ScheduleStatus.ACTIVE.value
    cron: str | None = None
    timezone: str | None = None
    interval: float | None = None
    #: Name of a registered next-run function.
    next_interval: str | None = None
    #: Total runs wanted (None: forever).
    repeat: int | None = None
    runs: int = 0
    failures: int = 0
    last_run: float | None = None
    last_error: str | None = None

    @property
    def recurring(self) -> bool:
        """Whether the schedule runs more than once."""
        return bool(self.cron or self.interval or self.next_interval)


schedule_decoder = msgspec.json.Decoder(ScheduleRecord)
waiting_decoder = msgspec.json.Decoder(WaitingJob)
sealed_decoder = msgspec.json.Decoder(SealedOutcome)
