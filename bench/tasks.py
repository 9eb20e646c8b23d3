"""Job functions the benchmarks enqueue (imported by worker processes as ``bench.tasks``).

They do nothing on purpose: the benchmarks measure naq's own cost per job.
"""

from __future__ import annotations


def noop() -> None:
    """Do nothing (runs in the worker's thread pool)."""


async def async_noop() -> None:
    """Do nothing (runs on the worker's event loop)."""
