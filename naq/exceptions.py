"""The error tree under its original module name.

The classes are defined once, in :mod:`naq.errors`; this module shows the very same
class objects, so ``except naq.exceptions.JobNotFoundError`` and ``except
naq.JobNotFoundError`` catch the same errors. ``ConnectionError`` here is
:class:`~naq.errors.NaqConnectionError` (the name code written against this module
uses); only this module gives it that name, the builtin stays untouched elsewhere.
"""

from __future__ import annotations

from naq.errors import (
    AmbiguousIdError,
    ConfigurationError,
    InvalidQueueNameError,
    JobCancelledError,
    JobExecutionError,
    JobNotFoundError,
    JobTimeoutError,
    NaqConnectionError,
    NaqException,
    SecurityError,
    SerializationError,
    WorkerStartupError,
)

ConnectionError = NaqConnectionError

__all__ = [
    "AmbiguousIdError",
    "ConfigurationError",
    "ConnectionError",
    "InvalidQueueNameError",
    "JobCancelledError",
    "JobExecutionError",
    "JobNotFoundError",
    "JobTimeoutError",
    "NaqConnectionError",
    "NaqException",
    "SecurityError",
    "SerializationError",
    "WorkerStartupError",
]
