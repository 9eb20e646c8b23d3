"""naq: a Python job queue on NATS JetStream.

Enqueue functions as jobs, run them in workers, schedule them and fetch their
results. Async first; every async helper has a ``_sync`` twin.
"""

from __future__ import annotations

from naq.context import JobContext, current_job, report_progress, report_progress_sync
from naq.control import stop_worker, stop_worker_sync
from naq.dead_letters import (
    FailedJob,
    delete_failed_job,
    delete_failed_job_sync,
    delete_failed_jobs,
    delete_failed_jobs_sync,
    list_failed_jobs,
    list_failed_jobs_sync,
    requeue_failed_job,
    requeue_failed_job_sync,
    requeue_failed_jobs,
    requeue_failed_jobs_sync,
)
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
from naq.history import JobEvent
from naq.job import Job
from naq.jobs import (
    cancel_job,
    cancel_job_sync,
    fetch_job_result,
    fetch_job_result_sync,
    get_job,
    get_job_sync,
    list_jobs,
    list_jobs_sync,
    wait_for_job,
    wait_for_job_sync,
    watch_jobs,
)
from naq.limits import QueueLimits
from naq.metrics import (
    FunctionMetrics,
    function_metrics,
    function_metrics_sync,
    throughput,
    throughput_sync,
)
from naq.middleware import JobLogMiddleware, JobOutcome, Middleware
from naq.models import JobStatus, WorkerStatus
from naq.monitor import (
    QueueStats,
    WorkerInfo,
    all_queue_stats,
    all_queue_stats_sync,
    list_workers,
    list_workers_sync,
)
from naq.queue import (
    Queue,
    cancel_scheduled_job,
    cancel_scheduled_job_sync,
    enqueue,
    enqueue_at,
    enqueue_at_sync,
    enqueue_in,
    enqueue_in_sync,
    enqueue_many,
    enqueue_many_sync,
    enqueue_sync,
    modify_scheduled_job,
    modify_scheduled_job_sync,
    pause_scheduled_job,
    pause_scheduled_job_sync,
    purge_queue,
    purge_queue_sync,
    resume_scheduled_job,
    resume_scheduled_job_sync,
    schedule,
    schedule_sync,
)
from naq.results import JobInfo
from naq.scheduler import Scheduler
from naq.schedules import (
    ScheduleInfo,
    list_scheduled_jobs,
    list_scheduled_jobs_sync,
    next_interval,
)
from naq.serialization import task
from naq.settings import (
    DEFAULT_NATS_URL,
    DEFAULT_QUEUE_NAME,
    JOB_STATUS,
    SCHEDULED_JOB_STATUS,
    WORKER_STATUS,
    Settings,
    get_settings,
)
from naq.sync import close_sync_connections
from naq.sync import sync_twin as _sync_twin
from naq.transport import connect, disconnect
from naq.worker import Worker
from naq.worker.lifespan import worker_state

__version__ = "0.1.0"

# The sync helpers run on naq's own background loop: these connect and close its connections.
connect_sync = _sync_twin(connect)
disconnect_sync = _sync_twin(disconnect)


__all__ = [
    "JobContext",
    "current_job",
    "report_progress",
    "report_progress_sync",
    "cancel_job",
    "cancel_job_sync",
    "stop_worker",
    "stop_worker_sync",
    "JobEvent",
    "list_jobs",
    "list_jobs_sync",
    "watch_jobs",
    "FunctionMetrics",
    "function_metrics",
    "function_metrics_sync",
    "throughput",
    "throughput_sync",
    "QueueStats",
    "all_queue_stats",
    "all_queue_stats_sync",
    "FailedJob",
    "delete_failed_job",
    "delete_failed_job_sync",
    "delete_failed_jobs",
    "delete_failed_jobs_sync",
    "list_failed_jobs",
    "list_failed_jobs_sync",
    "requeue_failed_job",
    "requeue_failed_job_sync",
    "requeue_failed_jobs",
    "requeue_failed_jobs_sync",
    "Scheduler",
    "cancel_scheduled_job",
    "cancel_scheduled_job_sync",
    "enqueue_at",
    "enqueue_at_sync",
    "enqueue_in",
    "enqueue_in_sync",
    "modify_scheduled_job",
    "modify_scheduled_job_sync",
    "pause_scheduled_job",
    "pause_scheduled_job_sync",
    "resume_scheduled_job",
    "resume_scheduled_job_sync",
    "schedule",
    "schedule_sync",
    "list_scheduled_jobs",
    "list_scheduled_jobs_sync",
    "next_interval",
    "ScheduleInfo",
    "DEFAULT_NATS_URL",
    "DEFAULT_QUEUE_NAME",
    "JOB_STATUS",
    "SCHEDULED_JOB_STATUS",
    "WORKER_STATUS",
    "close_sync_connections",
    "AmbiguousIdError",
    "ConfigurationError",
    "InvalidQueueNameError",
    "Job",
    "JobCancelledError",
    "JobExecutionError",
    "JobInfo",
    "JobNotFoundError",
    "JobStatus",
    "JobTimeoutError",
    "NaqConnectionError",
    "NaqException",
    "Queue",
    "SecurityError",
    "SerializationError",
    "Settings",
    "Worker",
    "WorkerInfo",
    "WorkerStartupError",
    "JobLogMiddleware",
    "QueueLimits",
    "JobOutcome",
    "Middleware",
    "worker_state",
    "WorkerStatus",
    "connect",
    "connect_sync",
    "disconnect",
    "disconnect_sync",
    "enqueue",
    "enqueue_many",
    "enqueue_many_sync",
    "enqueue_sync",
    "fetch_job_result",
    "fetch_job_result_sync",
    "get_job",
    "get_job_sync",
    "get_settings",
    "list_workers",
    "list_workers_sync",
    "purge_queue",
    "purge_queue_sync",
    "task",
    "wait_for_job",
    "wait_for_job_sync",
]
