"""Job functions the benchmarks enqueue (imported by worker processes as ``bench.tasks``).

The no-ops do nothing on purpose: the benchmarks measure naq's own cost per job. ``burn``
is CPU work in pure Python, for what worker processes gain over threads.
"""

from __future__ import annotations


def noop() -> None:
    """Do nothing (runs in the worker's thread pool)."""


async def async_noop() -> None:
    """Do nothing (runs on the worker's event loop)."""


def burn(iterations: int) -> None:
    """Spend the CPU on ``iterations`` turns of a pure-Python loop (it holds the GIL
    throughout: threads of one process can't run two of these at once)."""
    total = 0
    for i in range(iterations):
        total += i * i
