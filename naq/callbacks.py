"""Job callbacks: functions a worker calls once a job's outcome is stored.

``enqueue(f, ..., on_success=cb, on_failure=cb, on_stopped=cb)``: each callback travels
in the job as an import path (``module:function``) and runs in the worker that ended the
job, after its outcome is stored and acked, as ``cb(job_info, result)`` (completed),
``cb(job_info, error)`` (failed for good) or ``cb(job_info, error)`` (cancelled; the
error is a :class:`~naq.errors.JobCancelledError`). A callback that takes one parameter
is called with ``job_info`` alone. Async callbacks are awaited on the worker's loop, sync
ones run in a thread. A callback's own failure is logged and changes nothing.

Callbacks run at most once: a worker killed between storing an outcome and calling its
callback does not call it (the job's outcome stands). Work that must follow a job
whatever happens belongs in a dependent job (``depends_on``).
"""

from __future__ import annotations

from typing import Any

from naq.errors import SerializationError
from naq.serialization import BY_VALUE_HINT, function_reference, task_info

#: The job options naming callbacks, and the outcome each one follows.
CALLBACK_OPTIONS = ("on_success", "on_failure", "on_stopped")


def callback_path(value: Any, option: str) -> str | None:
    """The import path ``module:function`` a callback given as ``option`` travels as.

    Raises:
        SerializationError: ``value`` is not a module-level function nor a
            ``module:function`` path (named in the message, with ``option``).
    """
    if value is None:
        return None
    if isinstance(value, str):
        module, _, name = value.partition(":")
        if not module or not name:
            raise SerializationError(
                f"{option}={value!r} must be an import path 'module:function' "
                "or a module-level function"
            )
        return value
    info = task_info(value)
    func = info.func if info is not None else value
    try:
        reference, _ = function_reference(func)
    except SerializationError as exc:
        # Callbacks travel by name whatever the serializer: pickle's way out does not apply.
        reason = str(exc).replace(BY_VALUE_HINT, "")
        message = f"{option}={value!r} can't travel with the job: {reason}"
        raise SerializationError(message) from None
    return reference
