"""Settings: one frozen object, read from the environment, overridable in code.

``Settings.from_env()`` reads the ``NAQ_*`` variables; ``settings.replace(...)``
returns a copy with some fields changed. Nothing in naq keeps mutable module
state for configuration: every Queue, Worker and Scheduler holds its own
Settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from naq.errors import ConfigurationError
from naq.log_level import parse_level
from naq.statuses import JobStatus, ScheduleStatus, WorkerStatus

DEFAULT_NATS_URL = "nats://localhost:4222"
DEFAULT_QUEUE_NAME = "naq_default_queue"
DEFAULT_PREFIX = "naq"
DEFAULT_RESULT_TTL_SECONDS = 604_800
#: Longest time-to-live naq accepts for a record (100 years): nats-server refuses a
#: per-message TTL past a signed 64-bit count of seconds, and nothing needs more.
MAX_TTL_SECONDS = 100 * 365 * 86_400
DEFAULT_JOB_STATUS_TTL_SECONDS = 86_400
DEFAULT_WORKER_TTL_SECONDS = 60
DEFAULT_WORKER_HEARTBEAT_INTERVAL_SECONDS = 15
DEFAULT_SCHEDULER_LOCK_TTL_SECONDS = 30
DEFAULT_SCHEDULER_LOCK_RENEW_INTERVAL_SECONDS = 15
DEFAULT_MAX_SCHEDULE_FAILURES = 5
DEFAULT_ACK_WAIT_SECONDS = 30.0
DEFAULT_MAX_CRASH_REDELIVERIES = 5
DEFAULT_RUNNING_STATUS_DELAY_SECONDS = 0.05
DEFAULT_METRICS_RETENTION_SECONDS = 86_400
DEFAULT_METRICS_INTERVAL_SECONDS = 5.0

SERIALIZERS = ("json", "pickle")
#: How an on/off variable may be written.
_FLAGS = dict.fromkeys(("1", "true", "yes", "on"), True) | dict.fromkeys(
    ("0", "false", "no", "off"), False
)
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything naq can be configured with.

    Field names match the environment variables without the ``NAQ_`` prefix,
    lower-cased (``NAQ_DEFAULT_RESULT_TTL`` -> ``default_result_ttl``).
    """

    nats_url: str = DEFAULT_NATS_URL
    default_queue: str = DEFAULT_QUEUE_NAME
    job_serializer: str = "json"
    default_result_ttl: int = DEFAULT_RESULT_TTL_SECONDS
    job_status_ttl: int = DEFAULT_JOB_STATUS_TTL_SECONDS
    worker_ttl: int = DEFAULT_WORKER_TTL_SECONDS
    worker_heartbeat_interval: float = DEFAULT_WORKER_HEARTBEAT_INTERVAL_SECONDS
    scheduler_lock_ttl: int = DEFAULT_SCHEDULER_LOCK_TTL_SECONDS
    scheduler_lock_renew_interval: float = DEFAULT_SCHEDULER_LOCK_RENEW_INTERVAL_SECONDS
    max_schedule_failures: int = DEFAULT_MAX_SCHEDULE_FAILURES
    default_ack_wait: float = DEFAULT_ACK_WAIT_SECONDS
    #: Deliveries a job may get beyond its attempts (worker crashes) before it is dead-lettered.
    max_crash_redeliveries: int = DEFAULT_MAX_CRASH_REDELIVERIES
    #: Seconds a job runs before its "running" status is written. A quicker job goes
    #: from pending straight to its outcome (one write fewer, a quarter of a short job's
    #: cost); ``watch_jobs`` reports its running state from the outcome record. 0: always.
    running_status_delay: float = DEFAULT_RUNNING_STATUS_DELAY_SECONDS
    #: Seconds the workers' metrics reports are kept (the metrics stream's max age).
    metrics_retention: int = DEFAULT_METRICS_RETENTION_SECONDS
    #: Seconds between a worker's metrics reports; 0 turns a worker's metrics off.
    metrics_interval: float = DEFAULT_METRICS_INTERVAL_SECONDS
    #: Log level of every naq process (a command's ``--log-level`` wins); ``None``: each
    #: command's own default (see naq.log_level).
    log_level: str | None = None
    #: Use nats-py through its public API only: naq's publish frames and direct
    #: subscriptions (which write into the client's internals) are off.
    plain_client: bool = False
    prefix: str = DEFAULT_PREFIX
    replicas: int = 1
    allowed_modules: tuple[str, ...] = ()
    nats_user: str | None = None
    nats_password: str | None = None
    nats_token: str | None = None
    nats_creds: str | None = None
    nats_nkey_seed: str | None = None
    nats_tls_ca: str | None = None
    nats_tls_cert: str | None = None
    nats_tls_key: str | None = None
    signing_key: str | None = field(default=None, repr=False)
    result_encryption_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.job_serializer not in SERIALIZERS:
            raise ConfigurationError(
                f"NAQ_JOB_SERIALIZER={self.job_serializer!r} is not one of {', '.join(SERIALIZERS)}"
            )
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"NAQ_PREFIX={self.prefix!r} may only hold letters, digits, '-' and '_'"
            )
        if self.replicas < 1 or self.replicas > 5:
            raise ConfigurationError(f"NAQ_REPLICAS={self.replicas!r} must be between 1 and 5")
        for name in (
            "default_result_ttl",
            "job_status_ttl",
            "worker_ttl",
            "scheduler_lock_ttl",
            "metrics_retention",
        ):
            if not 1 <= getattr(self, name) <= MAX_TTL_SECONDS:
                raise ConfigurationError(
                    f"{name}={getattr(self, name)!r} must be from 1 to {MAX_TTL_SECONDS} seconds"
                )
        if self.running_status_delay < 0:
            raise ConfigurationError(
                f"NAQ_RUNNING_STATUS_DELAY={self.running_status_delay!r} must not be negative"
            )
        if not 0 <= self.metrics_interval < math.inf:
            raise ConfigurationError(
                f"NAQ_METRICS_INTERVAL={self.metrics_interval!r} must be 0 (off) or a number "
                "of seconds > 0"
            )
        if self.default_ack_wait <= 0:
            raise ConfigurationError(f"default_ack_wait={self.default_ack_wait!r} must be positive")
        if self.log_level is not None:
            object.__setattr__(self, "log_level", parse_level(self.log_level, "NAQ_LOG_LEVEL"))

    @property
    def servers(self) -> tuple[str, ...]:
        """The NATS server URLs (``nats_url`` may list several, comma separated)."""
        return _split(self.nats_url) or (DEFAULT_NATS_URL,)

    def history_ttl(self, result_ttl: int | None = None) -> int:
        """Seconds an ended job's status (its history entry) is kept: as long as its
        result (``result_ttl``, default the default result TTL), and never less than
        a status record."""
        return max(result_ttl or self.default_result_ttl, self.job_status_ttl)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``NAQ_*`` environment variables.

        Raises:
            ConfigurationError: a variable holds a value of the wrong type or range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get("NAQ_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        return cls(**values)


def _parse(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"NAQ_{name.upper()}={raw!r} is not a number") from None
    if kind.startswith("tuple"):
        return _split(raw)
    if kind == "bool":
        flag = raw.strip().lower()
        if flag not in _FLAGS:
            raise ConfigurationError(f"NAQ_{name.upper()}={raw!r} is not 1 or 0 (true or false)")
        return _FLAGS[flag]
    return raw


_env_cache: dict[tuple[tuple[str, str], ...], Settings] = {}


def get_settings() -> Settings:
    """Settings for the current environment (re-read when a ``NAQ_*`` variable changes)."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("NAQ_")))
    settings = _env_cache.get(key)
    if settings is None:
        settings = Settings.from_env()
        if len(_env_cache) > 64:
            _env_cache.clear()
        _env_cache[key] = settings
    return settings


# Names and values of the seeds' settings module, for code written against it.
# They are the defaults; what a process uses is its Settings object.
NAQ_PREFIX = DEFAULT_PREFIX
JOB_SERIALIZER = "json"
SCHEDULED_JOBS_KV_NAME = f"{DEFAULT_PREFIX}_scheduled_jobs"
SCHEDULER_LOCK_KV_NAME = f"{DEFAULT_PREFIX}_scheduler_lock"
SCHEDULER_LOCK_KEY = "leader_lock"
SCHEDULER_LOCK_TTL_SECONDS = DEFAULT_SCHEDULER_LOCK_TTL_SECONDS
SCHEDULER_LOCK_RENEW_INTERVAL_SECONDS = DEFAULT_SCHEDULER_LOCK_RENEW_INTERVAL_SECONDS
MAX_SCHEDULE_FAILURES = DEFAULT_MAX_SCHEDULE_FAILURES
JOB_STATUS_KV_NAME = f"{DEFAULT_PREFIX}_job_status"
JOB_STATUS_TTL_SECONDS = DEFAULT_JOB_STATUS_TTL_SECONDS
FAILED_JOB_SUBJECT_PREFIX = f"{DEFAULT_PREFIX}.failed"
FAILED_JOB_STREAM_NAME = f"{DEFAULT_PREFIX}_failed_jobs"
RESULT_KV_NAME = f"{DEFAULT_PREFIX}_results"
WORKER_KV_NAME = f"{DEFAULT_PREFIX}_workers"
#: The status enums (naq.statuses): a status naq returns equals its member.
JOB_STATUS = JobStatus
SCHEDULED_JOB_STATUS = ScheduleStatus
WORKER_STATUS = WorkerStatus
JOB_STATUS_COMPLETED = JobStatus.COMPLETED.value
JOB_STATUS_FAILED = JobStatus.FAILED.value
SCHEDULED_JOB_STATUS_ACTIVE = ScheduleStatus.ACTIVE.value
SCHEDULED_JOB_STATUS_PAUSED = ScheduleStatus.PAUSED.value
SCHEDULED_JOB_STATUS_FAILED = ScheduleStatus.FAILED.value
WORKER_STATUS_STARTING = WorkerStatus.STARTING.value
WORKER_STATUS_IDLE = WorkerStatus.IDLE.value
WORKER_STATUS_BUSY = WorkerStatus.BUSY.value
WORKER_STATUS_STOPPING = WorkerStatus.STOPPING.value
#: Kept for code written against the seeds: dependencies are now driven by
#: completions, never re-checked on a delay.
DEPENDENCY_CHECK_DELAY_SECONDS = 5
