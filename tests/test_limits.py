"""Queue limits across workers: a global concurrency limit and a global rate limit, with
several worker processes against a real nats-server; and what bad values get."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import naq
from naq import Queue
from tests import jobs
from tests.helpers import cli_all, running_worker, start_process, stop_processes, wait_until

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


async def test_rate_limit_holds_across_three_worker_processes(tmp_path: Path) -> None:
    q = "lim-rate"
    async with Queue(q) as queue:
        await queue.set_limits(rate="10/s")
        assert (await queue.limits()).rate == "10/s"
        batch = [await queue.enqueue(jobs.async_sleep, 0) for _ in range(150)]
        procs = [start_process(tmp_path, f"r{i}", "worker", q, "-c", "4") for i in range(3)]
        try:
            spans = [await job.result(timeout=60) for job in batch[:20]]
            first = min(start for start, _ in spans)
            # Every start in the 6 s from the first one, over all three workers.
            await asyncio.sleep(max(0.0, first + 6.5 - time.time()))
            starts = []
            for job in batch:
                info = await job.info()
                if info.started_at is not None:
                    starts.append(info.started_at)
        finally:
            stop_processes(procs)
        in_window = [t for t in starts if first <= t < first + 6.0]
        assert 50 <= len(in_window) <= 70, len(in_window)
        # None was dropped or failed: the rest still wait, pending.
        infos = [await job.info() for job in batch]
        assert {i.status for i in infos} <= {naq.JobStatus.COMPLETED, naq.JobStatus.PENDING}


# -- priorities ----------------------------------------------------------------------------


async def starts_of(batch: list[naq.Job]) -> list[float]:
    return [(await job.info()).started_at or 0.0 for job in batch]


async def test_a_worker_takes_its_queues_strictly_in_the_order_given() -> None:
    async with Queue("prio-lo") as lo, Queue("prio-hi") as hi:
        low = [await lo.enqueue(jobs.noop) for _ in range(30)]
        high = [await hi.enqueue(jobs.noop) for _ in range(10)]
        async with running_worker(["prio-hi", "prio-lo"], concurrency=1) as worker:
            for job in low + high:
                await job.result(timeout=20)
        assert not worker.fair
    low_starts, high_starts = sorted(await starts_of(low)), await starts_of(high)
    assert max(high_starts) < low_starts[1]


async def test_fair_shares_the_slots_among_the_queues() -> None:
    async with Queue("fair-lo") as lo, Queue("fair-hi") as hi:
        low = [await lo.enqueue(jobs.noop) for _ in range(30)]
        high = [await hi.enqueue(jobs.noop) for _ in range(10)]
        async with running_worker(["fair-hi", "fair-lo"], concurrency=1, fair=True):
            for job in low + high:
                await job.result(timeout=20)
    low_starts, high_starts = sorted(await starts_of(low)), await starts_of(high)
    # Turn by turn: low jobs ran among the high ones (strict order lets at most one through).
    assert sum(start < max(high_starts) for start in low_starts) >= 2


# -- the CLI -------------------------------------------------------------------------------


async def test_cli_queue_limit_sets_shows_and_removes_and_queues_lists_them() -> None:
    await Queue("lim-cli").enqueue(jobs.noop)
    (set_both,) = await cli_all(
        ("queue", "limit", "lim-cli", "--concurrency", "5", "--rate", "20/s")
    )
    set_both.assert_ok("lim-cli", "≤5 at once, 20/s")
    shown, listed, bad_rate, bad_count = await cli_all(
        ("queue", "limit", "lim-cli", "--json"),
        ("queues", "lim-cli", "--json"),
        ("queue", "limit", "lim-cli", "--rate", "fast"),
        ("queue", "limit", "lim-cli", "--concurrency", "0"),
    )
    assert shown.json() == {"concurrency": 5, "rate": "20/s"}
    assert listed.json()[0]["limits"] == {"concurrency": 5, "rate": "20/s"}
    bad_rate.assert_one_line_error("rate='fast'")
    bad_count.assert_one_line_error("concurrency=0")
    (table,) = await cli_all(("queues", "lim-cli"))
    table.assert_ok("≤5 at once, 20/s")
    (removed,) = await cli_all(("queue", "limit", "lim-cli", "--rate", "none"))
    removed.assert_ok("≤5 at once.")
    assert await Queue("lim-cli").limits() == naq.QueueLimits(concurrency=5)
