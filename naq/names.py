"""Names of every NATS stream, subject, consumer and bucket naq uses.

Pure functions of the prefix (``NAQ_PREFIX``, default ``naq``), so tests and
deployments sharing a server stay apart by choosing different prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from naq.errors import ConfigurationError, InvalidQueueNameError

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_=-]{1,200}$")
#: What may not stand in one token of a subject (a worker name becomes one).
_NOT_SUBJECT_SAFE = re.compile(r"[^A-Za-z0-9_-]")
SCHEDULER_LOCK_KEY = "leader_lock"


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name.

    Raises:
        InvalidQueueNameError: ``name`` is not 1-128 letters, digits, ``-`` or ``_``.
    """
    if not isinstance(name, str) or not QUEUE_NAME_RE.match(name):
        raise InvalidQueueNameError(
            f"invalid queue name {name!r}: use 1-128 letters, digits, '-' or '_'"
        )
    return name


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if it can be a job id (it is used as a KV key and message id).

    Raises:
        ConfigurationError: ``job_id`` is not 1-200 letters, digits, ``-``, ``_`` or ``=``.
    """
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        raise ConfigurationError(
            f"invalid job_id {job_id!r}: use 1-200 letters, digits, '-', '_' or '='"
        )
    return job_id


@dataclass(frozen=True)
class Names:
    """All NATS names for one prefix."""

    prefix: str = "naq"

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9_-]+$", self.prefix):
            raise ConfigurationError(f"invalid prefix {self.prefix!r}")

    @cached_property
    def jobs_stream(self) -> str:
        """Work-queue stream holding every queue's pending jobs."""
        return f"{self.prefix}_jobs"

    @cached_property
    def queue_subject_prefix(self) -> str:
        """Subjects of queues start with this (``naq.queue``)."""
        return f"{self.prefix}.queue"

    def queue_subject(self, queue: str) -> str:
        """Subject a queue's jobs are published to."""
        return f"{self.queue_subject_prefix}.{queue}"

    def queue_from_subject(self, subject: str) -> str:
        """Queue name of a queue subject."""
        return subject[len(self.queue_subject_prefix) + 1 :]

    def consumer(self, queue: str) -> str:
        """Durable pull consumer shared by every worker of ``queue``."""
        return f"{self.prefix}_worker_{queue}"

    @cached_property
    def failed_stream(self) -> str:
        """Stream of dead letters."""
        return f"{self.prefix}_failed_jobs"

    @cached_property
    def failed_subject_prefix(self) -> str:
        """Dead-letter subjects start with this (``naq.failed``)."""
        return f"{self.prefix}.failed"

    def failed_subject(self, queue: str) -> str:
        """Subject a queue's dead letters are published to."""
        return f"{self.failed_subject_prefix}.{queue}"

    def queue_from_failed_subject(self, subject: str) -> str:
        """Queue name of a dead-letter subject."""
        return subject[len(self.failed_subject_prefix) + 1 :]

    @cached_property
    def results_bucket(self) -> str:
        """KV bucket of job results (first result wins)."""
        return f"{self.prefix}_results"

    @cached_property
    def status_bucket(self) -> str:
        """KV bucket of job status records."""
        return f"{self.prefix}_job_status"

    @cached_property
    def workers_bucket(self) -> str:
        """KV bucket of worker heartbeats."""
        return f"{self.prefix}_workers"

    @cached_property
    def scheduled_bucket(self) -> str:
        """KV bucket of schedules."""
        return f"{self.prefix}_scheduled_jobs"

    @cached_property
    def cancelled_bucket(self) -> str:
        """KV bucket of cancellation requests, watched by every worker."""
        return f"{self.prefix}_cancelled_jobs"

    @cached_property
    def waiting_bucket(self) -> str:
        """KV bucket of jobs parked until their dependencies complete."""
        return f"{self.prefix}_waiting_jobs"

    @cached_property
    def dependents_bucket(self) -> str:
        """KV bucket indexing parked jobs by what they wait on (keys ``<dependency>.<job>``)."""
        return f"{self.prefix}_dependents"

    @cached_property
    def outcomes_stream(self) -> str:
        """Stream logging every ended job once, by queue and outcome (counts, newest first)."""
        return f"{self.prefix}_outcomes"

    @cached_property
    def outcome_subject_prefix(self) -> str:
        """Outcome-log subjects start with this (``naq.outcome``)."""
        return f"{self.prefix}.outcome"

    def outcome_subject(self, queue: str, outcome: str) -> str:
        """Subject logging jobs of ``queue`` that ended with ``outcome`` (``*`` for any)."""
        return f"{self.outcome_subject_prefix}.{queue}.{outcome}"

    @cached_property
    def metrics_stream(self) -> str:
        """Stream of the workers' metrics reports (one per worker per interval)."""
        return f"{self.prefix}_metrics"

    @cached_property
    def metrics_subject_prefix(self) -> str:
        """Metrics-report subjects start with this (``naq.metrics``)."""
        return f"{self.prefix}.metrics"

    def metrics_subject(self, worker: str) -> str:
        """Subject of ``worker``'s metrics reports (its name made one subject token)."""
        return f"{self.metrics_subject_prefix}.{_NOT_SUBJECT_SAFE.sub('_', worker) or '_'}"

    @cached_property
    def scheduler_lock_bucket(self) -> str:
        """KV bucket holding the scheduler leader lease."""
        return f"{self.prefix}_scheduler_lock"

    @cached_property
    def rates_bucket(self) -> str:
        """KV bucket holding, per rate-limited queue, when its next job may start."""
        return f"{self.prefix}_rates"

    def queue_limits_subject(self, queue: str) -> str:
        """Core-NATS subject announcing that ``queue``'s limits changed."""
        return f"{self.prefix}.control.limits.{queue}"

    def job_events_subject(self, status: str) -> str:
        """Core-NATS subject carrying a copy of each status record in ``status`` (one of
        :data:`naq.store.NOTABLE`; ``*`` for all of them)."""
        return f"{self.prefix}.events.jobs.{status}"

    def queue_resumed_subject(self, queue: str) -> str:
        """Core-NATS subject announcing that ``queue`` was resumed."""
        return f"{self.prefix}.control.resumed.{queue}"

    def worker_control_subject(self, worker: str) -> str:
        """Core-NATS subject of commands to one worker (e.g. stop)."""
        return f"{self.prefix}.control.worker.{worker}"
