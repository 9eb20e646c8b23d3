"""Worker middleware: code that sees every job a worker runs, and the worker's own start
and stop.

A middleware is any object with some of these methods, sync or async (subclassing
:class:`Middleware` is optional; it documents them and its empty ones are never called):

- ``before_job(job)``: before the function; raising fails the attempt with that error
  (the job's retry policy applies). Counts against the job's timeout.
- ``after_job(job, outcome)``: after every attempt's outcome is stored.
- ``on_retry(job, error)``: the attempt failed and the job will be tried again.
- ``on_failure(job, error)``: the job failed for good.
- ``on_worker_start(worker)`` / ``on_worker_stop(worker)``: once per run, after the
  lifespan is entered / before it is left.

``job`` is the running job's :class:`~naq.context.JobContext` (``id``, ``function``,
``args``, ``kwargs``, ``queue``, ``attempt``, ``meta``); ``outcome`` a :class:`JobOutcome`.
Middleware given as ``Worker(middleware=[a, b])`` run in that order, ``after_job`` and
``on_worker_stop`` in reverse. An error in any hook but ``before_job`` is logged with the
hook's name and changes no outcome. Hooks run on the worker's event loop: a sync hook
should be quick (write a slow one as ``async def``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from naq.context import JobContext

#: The hooks a middleware may have, each with when it runs (see the module docstring).
HOOKS = (
    "before_job",
    "after_job",
    "on_retry",
    "on_failure",
    "on_worker_start",
    "on_worker_stop",
)


@dataclass(frozen=True)
class JobOutcome:
    """What came of one attempt, as ``after_job`` sees it."""

    #: ``completed``, ``failed`` or ``cancelled``.
    status: str
    #: The function's return value (completed attempts).
    result: Any = None
    #: What it raised (failed attempts; a ``JobCancelledError`` for cancelled ones).
    error: BaseException | None = None
    #: A failed attempt whose job will be tried again.
    will_retry: bool = False
    #: Seconds from the start of the attempt (``before_job`` included) to its end.
    duration: float = 0.0


class Middleware:
    """Base for worker middleware; override the hooks you need (each may be async)."""

    def before_job(self, job: JobContext) -> Any:
        """Called before the job's function; raise to fail the attempt."""

    def after_job(self, job: JobContext, outcome: JobOutcome) -> Any:
        """Called once the attempt's outcome is stored."""

    def on_retry(self, job: JobContext, error: BaseException) -> Any:
        """Called when a failed attempt will be retried."""

    def on_failure(self, job: JobContext, error: BaseException) -> Any:
        """Called when the job failed for good."""

    def on_worker_start(self, worker: Any) -> Any:
        """Called once the worker's lifespan is entered, before its first job."""

    def on_worker_stop(self, worker: Any) -> Any:
        """Called after the worker's last job, before its lifespan is left."""


class JobLogMiddleware(Middleware):
    """Logs each attempt as one structured line: job id, function, queue, attempt,
    outcome and duration, as ``key=value`` pairs (``format="logfmt"``) or JSON.

    ``Worker(middleware=[JobLogMiddleware()])`` or ``--middleware naq.middleware:JobLogMiddleware``.
    """

    def __init__(self, logger: str = "naq.jobs", level: int = logging.INFO, format: str = "logfmt"):
        if format not in ("logfmt", "json"):
            raise ValueError(f"format={format!r} must be 'logfmt' or 'json'")
        self._log = logging.getLogger(logger)
        self._level = level
        self._json = format == "json"

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        """Log the attempt's line."""
        if not self._log.isEnabledFor(self._level):
            return
        fields: dict[str, Any] = {
            "job_id": job.job_id,
            "function": job.function,
            "queue": job.queue,
            "attempt": job.attempt,
            "outcome": "retry" if outcome.will_retry else str(outcome.status),
            "duration_ms": round(outcome.duration * 1000, 3),
        }
        if outcome.error is not None and outcome.status != "completed":
            fields["error"] = f"{type(outcome.error).__name__}: {outcome.error}"
        self._log.log(self._level, "%s", self.line(fields))

    def line(self, fields: dict[str, Any]) -> str:
        """``fields`` as one line in this middleware's format."""
        if self._json:
            return json.dumps(fields, default=str)
        return " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items())


def _logfmt(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n'):
        return text
    return json.dumps(text)
