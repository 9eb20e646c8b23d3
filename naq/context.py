"""What a running job can learn about itself and report: progress and meta.

Inside a job function (async or sync) run by a worker::

    ctx = naq.current_job()              # job id, queue, attempt, worker
    await naq.report_progress(0.5, "half way", rows=1200)   # async jobs
    naq.report_progress_sync(0.5, "half way")               # sync jobs (threads)

Progress (0..1), its message and the meta given are written to the job's
status record, so ``get_job`` and the TUI show them while the job runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from naq.errors import ConfigurationError, NaqException


@dataclass
class JobContext:
    """The job the current code runs in (also what worker middleware is handed)."""

    job_id: str
    queue: str
    attempt: int
    worker: str
    meta: dict[str, Any] = field(default_factory=dict)
    #: The function's reference (``module:function`` or a task name) and its arguments.
    function: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: What the worker's lifespan yielded (:func:`naq.worker_state`).
    state: dict[str, Any] = field(default_factory=dict)
    _report: (
        Callable[[float | None, str | None, dict[str, Any]], Coroutine[Any, Any, None]] | None
    ) = None
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def id(self) -> str:
        """The job's id (the same as :attr:`job_id`)."""
        return self.job_id


_current: ContextVar[JobContext | None] = ContextVar("naq_current_job", default=None)


def current_job() -> JobContext | None:
    """The running job's context, or None outside a job."""
    return _current.get()


def bind(context: JobContext) -> None:
    """Make ``context`` the current job (used by the worker)."""
    _current.set(context)


def _check(progress: float | None) -> JobContext:
    context = _current.get()
    if context is None or context._report is None:
        raise NaqException("report_progress can only be called from inside a running job")
    if progress is not None and (
        isinstance(progress, bool)
        or not isinstance(progress, (int, float))
        or not 0 <= progress <= 1
    ):
        raise ConfigurationError(f"progress={progress!r} must be a number from 0 to 1")
    return context


async def report_progress(
    progress: float | None = None, message: str | None = None, **meta: Any
) -> None:
    """Record the running job's progress (0..1), a message and meta (async jobs).

    Raises:
        NaqException: called outside a running job.
        ConfigurationError: progress outside 0..1.
    """
    context = _check(progress)
    assert context._report is not None
    context.meta.update(meta)
    await context._report(progress, message, dict(context.meta))


def report_progress_sync(
    progress: float | None = None, message: str | None = None, **meta: Any
) -> None:
    """Blocking form of :func:`report_progress` for sync jobs (run in worker threads)."""
    context = _check(progress)
    assert context._report is not None and context._loop is not None
    context.meta.update(meta)
    future = asyncio.run_coroutine_threadsafe(
        context._report(progress, message, dict(context.meta)), context._loop
    )
    future.result(timeout=10)
