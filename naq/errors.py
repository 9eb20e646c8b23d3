"""The naq error tree.

Every error naq raises derives from :class:`NaqException`, so callers can catch
one class for "anything naq refused or could not do" and narrower classes for
the cases they handle.
"""

from __future__ import annotations


class NaqException(Exception):
    """Root of every error raised by naq."""


class NaqConnectionError(NaqException):
    """NATS could not be reached, or the connection failed while naq was using it.

    The message names the server URL(s) and what to do about it.
    """


class ConfigurationError(NaqException):
    """A setting, option or argument has a value naq cannot use.

    The message names the offending value.
    """


class WorkerStartupError(NaqException):
    """A worker could not start: its lifespan raised on entry (the cause is chained)."""


class InvalidQueueNameError(ConfigurationError):
    """A queue name contains characters other than letters, digits, ``-`` and ``_``."""


class SerializationError(NaqException):
    """A job, its arguments or its result could not be encoded or decoded.

    Raised at enqueue time for values the serializer cannot carry (lambdas,
    closures, objects without a JSON form) and by workers for messages they
    cannot decode.
    """


class JobNotFoundError(NaqException):
    """naq has no job, result, schedule or dead letter (yet) for the given id.

    The message names the id.
    """


class AmbiguousIdError(ConfigurationError):
    """A shortened id (or worker name) is the start of more than one.

    The message names the prefix and lists the ids it could mean.
    """


class JobExecutionError(NaqException):
    """The job failed: it raised, timed out, or a dependency of it failed.

    Carries the remote error text in :attr:`error` and the worker-side
    traceback in :attr:`remote_traceback`.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        error: str | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.error = error
        self.remote_traceback = remote_traceback


class JobCancelledError(JobExecutionError):
    """The job was cancelled before it produced a result.

    Raised where a job's value is asked for (``job.result()``,
    ``fetch_job_result``). A :class:`JobExecutionError` too, so code that
    catches "the job gave no value" keeps catching it.
    """


class JobTimeoutError(NaqException):
    """Waiting for a job's outcome took longer than the caller allowed."""


class SecurityError(NaqException):
    """A job was refused for safety: a module outside ``allowed_modules``, an
    unsigned or forged message, or a pickled payload a worker does not accept."""
