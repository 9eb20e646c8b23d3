"""Job functions the tests enqueue (importable by worker processes as ``tests.jobs``)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path

import naq


def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


async def async_add(a: int, b: int) -> int:
    """Return ``a + b`` after yielding to the loop."""
    await asyncio.sleep(0)
    return a + b


def noop() -> None:
    """Do nothing (benchmarks)."""


async def async_noop() -> None:
    """Do nothing, asynchronously (benchmarks)."""


def fail(message: str = "boom") -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)


def raise_timeout(message: str = "boom") -> None:
    """Raise the builtin TimeoutError(message): the job's own, not a job timeout."""
    raise TimeoutError(message)


async def async_raise_timeout(message: str = "boom") -> None:
    """Raise the builtin TimeoutError(message) after yielding to the loop."""
    await asyncio.sleep(0)
    raise TimeoutError(message)


def echo_kwargs(*args: object, **kwargs: object) -> dict[str, object]:
    """Return what the function received."""
    return {"args": list(args), "kwargs": kwargs}


def sleep(seconds: float) -> float:
    """Sleep in a thread, then return the time it ended."""
    time.sleep(seconds)
    return time.time()


async def async_sleep(seconds: float) -> list[float]:
    """Sleep on the loop; return [start, end]."""
    start = time.time()
    await asyncio.sleep(seconds)
    return [start, time.time()]


def flaky(counter_file: str, failures: int) -> int:
    """Fail the first ``failures`` calls (counted in ``counter_file``), then return the count."""
    path = Path(counter_file)
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    if count <= failures:
        raise RuntimeError(f"flaky failure {count}")
    return count


def record_run(log_file: str, tag: str, seconds: float = 0.0) -> str:
    """Append ``tag pid`` to ``log_file`` (once at start), sleep, return the tag."""
    with open(log_file, "a") as handle:
        handle.write(f"{tag} {os.getpid()}\n")
    time.sleep(seconds)
    return tag


def when(moment: datetime) -> str:
    """Return the ISO form of a datetime argument (checks typed decoding)."""
    assert isinstance(moment, datetime), type(moment)
    return moment.isoformat()


@naq.task(name="tests.multiply", max_retries=2)
def multiply(a: int, b: int) -> int:
    """A registered task."""
    return a * b


def touch(path: str) -> str:
    """Create the file ``path`` (proves a job ran); return the path."""
    Path(path).write_text("ran\n")
    return path


def _wait_for_file(path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


async def async_progress(release_file: str, timeout: float = 15.0) -> dict[str, object]:
    """Report progress 0.5 ("half", step=1), wait until ``release_file`` exists, return
    what ``naq.current_job()`` said."""
    await naq.report_progress(0.5, "half", step=1)
    deadline = time.monotonic() + timeout
    while not Path(release_file).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_file} never appeared")
        await asyncio.sleep(0.01)
    context = naq.current_job()
    assert context is not None
    return {"job_id": context.job_id, "queue": context.queue, "attempt": context.attempt}


def sync_progress(release_file: str, timeout: float = 15.0) -> str:
    """Sync twin of :func:`async_progress`: report 0.25 ("quarter", rows=10) from a thread."""
    naq.report_progress_sync(0.25, "quarter", rows=10)
    _wait_for_file(release_file, timeout)
    context = naq.current_job()
    assert context is not None
    return context.job_id


def slow_touch(path: str, seconds: float) -> str:
    """Sleep in a thread, then create ``path`` (proves the thread ran to its end)."""
    time.sleep(seconds)
    Path(path).write_text("finished\n")
    return "finished"


def record_job_id(log_file: str) -> str:
    """Append ``<job id> <pid>`` to ``log_file`` (one line per execution); return the job id.

    Each run of a schedule has its own job id, so the lines tell which runs executed, and how often.
    """
    context = naq.current_job()
    job_id = context.job_id if context is not None else "-"
    with open(log_file, "a") as handle:
        handle.write(f"{job_id} {os.getpid()}\n")
    return job_id
