"""Queue limits across workers: a global concurrency limit and a global rate limit, with
several worker processes against a real nats-server; and what bad values get."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import naq
from naq import Queue
from tests import jobs
from tests.helpers import start_process, stop_processes, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")


def most_at_once(spans: list[list[float]]) -> int:
    """The most spans ([start, end]) overlapping at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def workers_listed(count: int) -> None:
    await wait_until(lambda: _listed(count), timeout=20)


async def _listed(count: int) -> bool:
    return len(await naq.list_workers()) >= count


async def test_concurrency_limit_holds_across_worker_processes(tmp_path: Path) -> None:
    q = "lim-conc"
    async with Queue(q) as queue:
        assert await queue.limits() == naq.QueueLimits()
        assert await queue.set_limits(concurrency=2) == naq.QueueLimits(concurrency=2)
        procs = [start_process(tmp_path, f"w{i}", "worker", q, "-c", "4") for i in range(3)]
        try:
            await workers_listed(3)
            batch = [await queue.enqueue(jobs.async_sleep, 0.2) for _ in range(12)]
            spans = [await job.result(timeout=30) for job in batch]
        finally:
            stop_processes(procs)
        assert most_at_once(spans) == 2
        # Kept on the queue: a later look (and a restarted worker) sees it.
        assert (await queue.limits()).concurrency == 2
        stats = await queue.stats()
        assert stats.limits == naq.QueueLimits(concurrency=2)
        await queue.set_limits(concurrency=None)
        assert await queue.limits() == naq.QueueLimits()


async def test_bad_limits_are_one_clear_error_naming_the_value() -> None:
    async with Queue("lim-bad") as queue:
        with pytest.raises(naq.ConfigurationError, match="rate='fast'"):
            await queue.set_limits(rate="fast")
        with pytest.raises(naq.ConfigurationError, match="concurrency=0"):
            await queue.set_limits(concurrency=0)
        with pytest.raises(naq.ConfigurationError, match="concurrency=2.5"):
            await queue.set_limits(concurrency=2.5)
        assert await queue.limits() == naq.QueueLimits()
