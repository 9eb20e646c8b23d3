"""The status values naq writes: of a job, of a schedule, of a worker.

Each set is a string enum: a member *is* its value (``JobStatus.COMPLETED ==
"completed"``, the same hash, so a member finds a plain string in a set and back),
prints and formats as its value on every Python naq supports, and encodes as its value
with msgspec and ``json``. A status read back from NATS is a plain string equal to its
member. The settings module shows these enums under the seeds' names (``JOB_STATUS``,
``SCHEDULED_JOB_STATUS``, ``WORKER_STATUS``).
"""

from __future__ import annotations

import enum
from typing import ClassVar


class StatusEnum(str, enum.Enum):
    """A string enum whose members print as their value.

    ``class X(str, Enum)`` prints and formats as ``X.NAME`` from Python 3.12 on (3.11's
    ``StrEnum`` fixes that but 3.10 lacks it): a status must read the same in an f-string,
    a log line or a table everywhere.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class JobStatus(StatusEnum):
    """A job's status (``JobInfo.status``, ``StatusRecord.status``)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    RETRY = "retry"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"

    #: Statuses after which a job never runs again (unless requeued); set below, as a
    #: member's value can't be a set.
    ENDED: ClassVar[frozenset[str]]


JobStatus.ENDED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class ScheduleStatus(StatusEnum):
    """A schedule's status (``ScheduleInfo.status``)."""

    ACTIVE = "active"
    PAUSED = "paused"
    FAILED = "failed"


class WorkerStatus(StatusEnum):
    """A worker's status (``WorkerInfo.status``, ``Worker.status``)."""

    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
