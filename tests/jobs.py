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
    """Fail the first ``failures`` calls (counted in ``counter_file``), then return the call count."""
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
