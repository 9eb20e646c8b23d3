"""Job: one function call to run on a worker, and the handle to its outcome."""

from __future__ import annotations

import inspect
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from naq.callbacks import CALLBACK_OPTIONS, callback_path
from naq.errors import ConfigurationError, JobExecutionError, SerializationError
from naq.jobs import fetch_job_result, get_job, job_outcome, wait_for_job
from naq.models import JobEnvelope, decode_envelope, envelope_encoder
from naq.names import validate_job_id, validate_queue_name
from naq.pickled_jobs import load_call
from naq.retry import exception_paths, retry_delay, validate_policy
from naq.serialization import (
    check_encodable,
    function_reference,
    pickle_dumps,
    registered_task,
    resolve_function,
)
from naq.serializers import (
    JsonSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
)
from naq.settings import MAX_TTL_SECONDS, SERIALIZERS, Settings, get_settings
from naq.sync import run_sync, sync_twin

__all__ = [
    "Job",
    "JsonSerializer",
    "PickleSerializer",
    "RetryDelayType",
    "Serializer",
    "get_serializer",
    "new_job_id",
    "with_task_defaults",
]

RetryDelayType = float | int | Sequence[float | int]


def new_job_id() -> str:
    """A fresh random job id: a version-4 UUID's 32 hex characters.

    Made from the random bytes directly, as ``uuid.uuid4().hex`` would be, at a
    fraction of its cost (one per enqueued job).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _dependency_ids(depends_on: Any) -> list[str]:
    if depends_on is None:
        return []
    items = depends_on if isinstance(depends_on, (list, tuple, set)) else [depends_on]
    ids = []
    for item in items:
        job_id = item.job_id if isinstance(item, Job) else item
        ids.append(validate_job_id(job_id))
    return ids


class Job:
    """A function call to run on a worker, with its options.

    Jobs are made by :meth:`naq.Queue.enqueue`; the returned object is also the
    handle to the outcome: ``await job.result(timeout=...)``.

    Raises (on construction):
        ConfigurationError: an option has an unusable value (named in the message).
        SerializationError: the function or an argument can't travel.
    """

    def __init__(
        self,
        function: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        enqueue_time: float | None = None,
        max_retries: int | None = 0,
        retry_delay: RetryDelayType | None = 0,
        retry_strategy: str | None = None,
        retry_jitter: bool | float = False,
        retry_on: Any = None,
        ignore_on: Any = None,
        queue_name: str | None = None,
        result_ttl: int | None = None,
        timeout: float | None = None,
        depends_on: Any = None,
        dependency_ids: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
        on_success: Any = None,
        on_failure: Any = None,
        on_stopped: Any = None,
        settings: Settings | None = None,
        options_given: Sequence[str] = (),
    ) -> None:
        self._settings = settings or get_settings()
        #: Job options the caller set (a task's registered defaults fill the others).
        self.options_given = tuple(sorted(options_given))
        self.function = function
        # Under pickle the function itself travels: any callable will do.
        self.function_ref, self.module = function_reference(
            function, by_value=self._settings.job_serializer == "pickle"
        )
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.job_id = new_job_id() if job_id is None else validate_job_id(job_id)
        self.enqueue_time = time.time() if enqueue_time is None else float(enqueue_time)
        policy = validate_policy(
            0 if max_retries is None else max_retries,
            0 if retry_delay is None else retry_delay,
            retry_strategy,
            retry_jitter,
        )
        self.max_retries, self.retry_delay, self.retry_strategy, self.retry_jitter = policy
        self.retry_on = exception_paths(retry_on, "retry_on")
        self.ignore_on = exception_paths(ignore_on, "ignore_on")
        self.queue_name = validate_queue_name(queue_name or self._settings.default_queue)
        if result_ttl is not None and (
            isinstance(result_ttl, bool)
            or not isinstance(result_ttl, int)
            or not 1 <= result_ttl <= MAX_TTL_SECONDS
        ):
            raise ConfigurationError(
                f"result_ttl={result_ttl!r} must be a whole number of seconds "
                f"from 1 to {MAX_TTL_SECONDS}"
            )
        self.result_ttl = result_ttl
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ConfigurationError(f"timeout={timeout!r} must be a number of seconds > 0")
        self.timeout = None if timeout is None else float(timeout)
        self.dependency_ids = _dependency_ids(
            dependency_ids if dependency_ids is not None else depends_on
        )
        if meta is not None and not isinstance(meta, dict):
            raise ConfigurationError(f"meta={meta!r} must be a dict")
        self.meta = dict(meta or {})
        self.on_success = callback_path(on_success, "on_success")
        self.on_failure = callback_path(on_failure, "on_failure")
        self.on_stopped = callback_path(on_stopped, "on_stopped")
        if self._settings.job_serializer == "json":
            check_encodable(self.args, self.kwargs)
            if self.meta:
                check_encodable((), self.meta)
        # The seeds' outcome fields, kept for code that reads them: naq keeps a job's
        # outcome in the results bucket, read with result(), info() or wait().
        self.error: str | None = None
        self.traceback: str | None = None

    def __repr__(self) -> str:
        return f"Job({self.job_id!r}, function={self.function_ref!r}, queue={self.queue_name!r})"

    # -- wire form -------------------------------------------------------

    def to_envelope(self, serializer: str | None = None) -> JobEnvelope:
        """The envelope this job travels in, with ``serializer`` (by default its settings').

        Raises:
            SerializationError: ``serializer`` is unknown, or is JSON for a job made for
                pickle whose function or arguments JSON can't carry.
        """
        serializer = serializer or self._settings.job_serializer
        if serializer not in SERIALIZERS:
            raise SerializationError(
                f"serializer {serializer!r} is not one of {', '.join(SERIALIZERS)}"
            )
        reference, module = self.function_ref, self.module
        pickled = None
        args: list[Any] = list(self.args)
        kwargs = self.kwargs
        if serializer == "pickle":
            pickled = pickle_dumps((self.function, self.args, self.kwargs))
            args, kwargs = [], {}
        elif self._settings.job_serializer != serializer:
            # Made for pickle, sent as JSON: checked as a JSON job is when it is made.
            reference, module = function_reference(self.function)
            check_encodable(self.args, self.kwargs)
            check_encodable((), self.meta)
        return JobEnvelope(
            id=self.job_id,
            fn=reference,
            module=module,
            queue=self.queue_name,
            enqueued_at=self.enqueue_time,
            args=args,
            kwargs=kwargs,
            max_retries=self.max_retries,
            retry_delay=self.retry_delay,
            retry_strategy=self.retry_strategy,
            retry_jitter=self.retry_jitter,
            retry_on=self.retry_on,
            ignore_on=self.ignore_on,
            timeout=self.timeout,
            result_ttl=self.result_ttl,
            depends_on=self.dependency_ids,
            meta=self.meta,
            serializer=serializer,
            pickled=pickled,
            on_success=self.on_success,
            on_failure=self.on_failure,
            on_stopped=self.on_stopped,
            # Only a task name needs them: the worker knows its registered defaults.
            options=list(self.options_given) if ":" not in reference else [],
        )

    def serialize(self) -> bytes:
        """The bytes published on the queue subject."""
        return envelope_encoder.encode(self.to_envelope())

    @classmethod
    def from_envelope(cls, envelope: JobEnvelope, settings: Settings | None = None) -> Job:
        """Rebuild a job from its envelope (the function stays a reference until run,
        unless it was pickled).

        Raises:
            SerializationError: the job is pickled and ``settings`` don't accept pickle,
                or it can't be unpickled here.
            SecurityError: it is pickled and needs a module outside ``allowed_modules``.
        """
        function: Any = envelope.fn
        args: Sequence[Any] = envelope.args
        kwargs: dict[str, Any] = envelope.kwargs
        settings = settings or get_settings()
        if envelope.serializer == "pickle":
            if settings.job_serializer != "pickle":
                raise SerializationError(
                    f"job {envelope.id} is pickled; set NAQ_JOB_SERIALIZER=pickle to accept it"
                )
            function, args, kwargs = load_call(
                envelope.pickled or b"", envelope.module, settings.allowed_modules
            )
        job = cls.__new__(cls)
        job._settings = settings
        job.function = function
        job.function_ref, job.module = envelope.fn, envelope.module
        job.args, job.kwargs = tuple(args), dict(kwargs)
        job.job_id, job.enqueue_time = envelope.id, envelope.enqueued_at
        job.max_retries, job.retry_delay = envelope.max_retries, envelope.retry_delay
        job.retry_strategy, job.retry_jitter = envelope.retry_strategy, envelope.retry_jitter
        job.retry_on, job.ignore_on = list(envelope.retry_on), list(envelope.ignore_on)
        job.queue_name, job.result_ttl, job.timeout = (
            envelope.queue,
            envelope.result_ttl,
            envelope.timeout,
        )
        job.dependency_ids, job.meta = list(envelope.depends_on), dict(envelope.meta)
        job.on_success, job.on_failure = envelope.on_success, envelope.on_failure
        job.on_stopped = envelope.on_stopped
        job.error = job.traceback = None
        return job

    @classmethod
    def deserialize(cls, data: bytes, settings: Settings | None = None) -> Job:
        """Rebuild a job from the bytes :meth:`serialize` made.

        Raises:
            SerializationError: the bytes are not a naq job.
        """
        return cls.from_envelope(decode_envelope(data), settings)

    def serialize_failed_job(self) -> bytes:
        """This job's dead letter, with its :attr:`error` and :attr:`traceback`, as naq's
        failed stream holds it (with this job's serializer)."""
        return get_serializer(self._settings.job_serializer).serialize_failed_job(self)

    @staticmethod
    def serialize_result(
        result: Any,
        status: str,
        error: str | None = None,
        traceback_str: str | None = None,
        *,
        job_id: str = "",
    ) -> bytes:
        """A job's outcome as the results bucket holds it, with ``NAQ_JOB_SERIALIZER``'s
        serializer (see :meth:`JsonSerializer.serialize_result`)."""
        return get_serializer().serialize_result(
            result, status, error, traceback_str, job_id=job_id
        )

    @staticmethod
    def deserialize_result(data: bytes) -> dict[str, Any]:
        """An outcome read from the results bucket: a dict of ``status``, ``result``,
        ``error`` and ``traceback`` (see :meth:`JsonSerializer.deserialize_result`)."""
        return get_serializer().deserialize_result(data)

    # -- policy ------------------------------------------------------------

    def execute(self) -> Any:
        """Run the job's function here, in this process, and return its value.

        For a job in hand (a test, a debugger); workers run jobs themselves. An async
        function is awaited on naq's background loop, so this works inside a running
        event loop too. Sets :attr:`error` and :attr:`traceback` when it raises.

        Raises:
            JobExecutionError: the function raised; the error and traceback are attached.
        """
        func = self.function
        if not callable(func):
            func = resolve_function(self.function_ref, self.module, self._settings.allowed_modules)
        try:
            value = func(*self.args, **self.kwargs)
            if inspect.isawaitable(value):
                value = run_sync(_awaited(value))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = "".join(traceback.format_exception(exc))
            raise JobExecutionError(
                f"job {self.job_id} failed: {self.error}",
                job_id=self.job_id,
                error=self.error,
                remote_traceback=self.traceback,
            ) from exc
        return value

    def get_retry_delay(self, attempt: int) -> float:
        """Seconds to wait before retrying after attempt ``attempt`` (1-based) failed."""
        return retry_delay(attempt, self.retry_delay, self.retry_strategy, self.retry_jitter)

    # -- outcome -------------------------------------------------------------

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to finish and return its value.

        Raises:
            JobExecutionError: the job failed (remote error and traceback attached).
            JobTimeoutError: no outcome within ``timeout`` seconds.
        """
        return await job_outcome(self.job_id, timeout, self._settings)

    result_sync = sync_twin(result)

    async def wait(self, timeout: float | None = None) -> Any:
        """Wait until the job ends; returns its :class:`~naq.results.JobInfo`."""
        return await wait_for_job(self.job_id, timeout, settings=self._settings)

    wait_sync = sync_twin(wait)

    async def info(self) -> Any:
        """The job's current :class:`~naq.results.JobInfo`."""
        return await get_job(self.job_id, settings=self._settings)

    info_sync = sync_twin(info)

    @staticmethod
    async def fetch_result(job_id: str, nats_url: str | None = None) -> Any:
        """The value of finished job ``job_id`` (see :func:`naq.fetch_job_result`)."""
        return await fetch_job_result(job_id, nats_url=nats_url)

    fetch_result_sync = staticmethod(sync_twin(fetch_result))


#: Job options a task's registration may default (each is the envelope field of its name).
_DEFAULTABLE = frozenset(
    {
        "max_retries",
        "retry_delay",
        "retry_strategy",
        "retry_jitter",
        "retry_on",
        "ignore_on",
        "timeout",
        "result_ttl",
        "meta",
        *CALLBACK_OPTIONS,
    }
)
#: Task name -> the envelope fields of its registered options, computed once.
_task_fields: dict[str, dict[str, Any]] = {}


def with_task_defaults(envelope: JobEnvelope) -> JobEnvelope:
    """``envelope`` with its task's registered options for those its producer left
    unset (a producer may enqueue a task by name without importing it).

    A job that names a function by import path, or a task this process has not
    registered, is returned as it is.
    """
    if ":" in envelope.fn:
        return envelope
    fields = _task_fields.get(envelope.fn)
    if fields is None:
        info = registered_task(envelope.fn)
        if info is None:
            return envelope
        options = {k: v for k, v in info.options.items() if k in _DEFAULTABLE}
        # Validated and encoded as a producer importing the task would have done.
        defaults = Job(envelope.fn, queue_name=envelope.queue, **options).to_envelope()
        fields = _task_fields[envelope.fn] = {name: getattr(defaults, name) for name in options}
    changes = {name: value for name, value in fields.items() if name not in envelope.options}
    return msgspec.structs.replace(envelope, **changes) if changes else envelope
