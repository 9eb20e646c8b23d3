"""naq's classic serializer interface: a job, its dead letter and its result as bytes.

Both serializers write what naq itself stores: the job envelope a worker takes from a
queue, the dead letter of the failed stream, the result record of the results bucket
(sealed when a result key is set). They differ in how the function, arguments and
return value travel: :class:`JsonSerializer` by name and as JSON, :class:`PickleSerializer`
cloudpickled (an opt-in for trusted deployments). :func:`get_serializer` returns the one
``NAQ_JOB_SERIALIZER`` selects. Their methods are class methods: the classes themselves
are serializers, and so are their instances.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from naq.errors import ConfigurationError, SerializationError
from naq.models import DeadLetter, JobStatus, ResultRecord, envelope_encoder, record_encoder
from naq.results import decode_result, encode_result, result_value
from naq.serialization import stored_result
from naq.settings import Settings, get_settings

if TYPE_CHECKING:
    from naq.job import Job


class Serializer(Protocol):
    """Turns jobs, dead letters and results into bytes and back."""

    def serialize_job(self, job: Job) -> bytes:
        """The message published on the job's queue subject."""
        ...

    def deserialize_job(self, data: bytes) -> Job:
        """The job a queue message carries."""
        ...

    def serialize_failed_job(self, job: Job) -> bytes:
        """The job's dead letter (with its error and traceback), as the failed stream holds it."""
        ...

    def serialize_result(
        self,
        result: Any,
        status: str,
        error: str | None = None,
        traceback_str: str | None = None,
    ) -> bytes:
        """A job's outcome as the results bucket holds it."""
        ...

    def deserialize_result(self, data: bytes) -> dict[str, Any]:
        """An outcome from the results bucket: ``status``, ``result``, ``error``, ``traceback``."""
        ...


class _EnvelopeSerializer:
    """naq's own records, with the function, arguments and value sent as ``name`` says."""

    name: ClassVar[str]

    @classmethod
    def _settings(cls) -> Settings:
        """The environment's settings, with this serializer."""
        return get_settings().replace(job_serializer=cls.name)

    @classmethod
    def serialize_job(cls, job: Job) -> bytes:
        """The message published on the job's queue subject.

        Raises:
            SerializationError: the function or an argument can't travel this way.
        """
        return envelope_encoder.encode(job.to_envelope(cls.name))

    @classmethod
    def deserialize_job(cls, data: bytes) -> Job:
        """The job a queue message carries (a JSON job's function stays a name until run).

        Raises:
            SerializationError: not a naq job, or (JSON) a pickled one.
            SecurityError: (pickle) the job's module is outside ``allowed_modules``.
        """
        from naq.job import Job  # naq.job re-exports this module

        return Job.deserialize(data, cls._settings())

    @classmethod
    def serialize_failed_job(cls, job: Job) -> bytes:
        """The job's dead letter as the failed stream holds it: its error and traceback,
        and the job's message (to requeue it from)."""
        letter = DeadLetter(
            job_id=job.job_id,
            queue=job.queue_name,
            reason="failed",
            failed_at=time.time(),
            function=job.function_ref,
            error=job.error,
            traceback=job.traceback,
            payload=cls.serialize_job(job),
        )
        return record_encoder.encode(letter)

    @classmethod
    def serialize_result(
        cls,
        result: Any,
        status: str,
        error: str | None = None,
        traceback_str: str | None = None,
        *,
        job_id: str = "",
    ) -> bytes:
        """A job's outcome as the results bucket holds it (and naq's readers read it).

        With a result key set the outcome is sealed to ``job_id``: pass the job's id
        for naq's readers to unseal it.

        Raises:
            SerializationError: ``status`` is not an outcome, or (JSON) ``result`` has
                no JSON form.
        """
        if status not in JobStatus.ENDED:
            raise SerializationError(
                f"status {status!r} is not an outcome ({', '.join(sorted(JobStatus.ENDED))})"
            )
        value, pickled = stored_result(cls.name, result)
        record = ResultRecord(
            job_id=job_id,
            status=status,
            finished_at=time.time(),
            result=value,
            pickled=pickled,
            error=error,
            traceback=traceback_str,
        )
        return encode_result(get_settings(), record)

    @classmethod
    def deserialize_result(cls, data: bytes) -> dict[str, Any]:
        """An outcome from the results bucket: ``status``, ``result``, ``error``, ``traceback``.

        Raises:
            SerializationError: the bytes are not a naq result record.
            SecurityError: the outcome is encrypted and this process has no key for it.
        """
        settings = cls._settings()
        record = decode_result(settings, data)
        if record is None:
            raise SerializationError(f"not a naq result record: {bytes(data[:60])!r}")
        return {
            "status": record.status,
            "result": result_value(record, settings),
            "error": record.error,
            "traceback": record.traceback,
        }


class JsonSerializer(_EnvelopeSerializer):
    """naq's default: the function travels by name, arguments and results as JSON (msgspec)."""

    name: ClassVar[str] = "json"


class PickleSerializer(_EnvelopeSerializer):
    """The opt-in for trusted deployments: function (by value when it has no importable
    name), arguments and result travel cloudpickled. Needs ``cloudpickle``."""

    name: ClassVar[str] = "pickle"


_SERIALIZERS: dict[str, type[JsonSerializer] | type[PickleSerializer]] = {
    JsonSerializer.name: JsonSerializer,
    PickleSerializer.name: PickleSerializer,
}


def get_serializer(name: str | None = None) -> type[JsonSerializer] | type[PickleSerializer]:
    """The serializer named ``name``, by default the one ``NAQ_JOB_SERIALIZER`` selects
    (the class: its methods need no instance).

    Raises:
        SerializationError: the name is not one of naq's serializers (it is named).
    """
    if name is None:
        try:
            name = get_settings().job_serializer
        except ConfigurationError:
            name = os.environ.get("NAQ_JOB_SERIALIZER", "")
            if name in _SERIALIZERS:
                raise  # another setting is wrong: its own message says which
    serializer = _SERIALIZERS.get(name)
    if serializer is None:
        raise SerializationError(
            f"serializer {name!r} is not one of {', '.join(_SERIALIZERS)} (NAQ_JOB_SERIALIZER)"
        )
    return serializer
