"""How a worker on several queues hands out its slots (real nats-server)."""

from __future__ import annotations

import asyncio
import time

import pytest

from naq import Queue
from tests import jobs
from tests.helpers import running_worker, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")


def most_at_once(spans: list[list[float]]) -> int:
    """The most of these [start, end] spans that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def test_one_slot_on_two_queues_drains_the_queue_that_has_jobs() -> None:
    # The free slot must not wait out a pull on the empty queue: 20 jobs of 50 ms took a
    # minute that way, against a second on the busy queue alone.
    async with Queue("lo") as lo:
        batch = await lo.enqueue_many([(jobs.async_sleep, (0.05,), {}) for _ in range(20)])
        start = time.monotonic()
        async with running_worker(["hi", "lo"], concurrency=1):
            spans = await asyncio.wait_for(
                asyncio.gather(*(job.result(timeout=30) for job in batch)), 10
            )
            elapsed = time.monotonic() - start
    assert elapsed < 5, f"20 jobs of 50 ms took {elapsed:.1f}s"
    assert most_at_once(spans) == 1


async def test_every_slot_goes_to_the_queue_that_has_jobs() -> None:
    # An idle queue's pull must not hold slots the busy queue's jobs could run in.
    async with Queue("lo") as lo, running_worker(["hi", "lo"], concurrency=4):
        batch = await lo.enqueue_many([(jobs.async_sleep, (0.5,), {}) for _ in range(8)])
        spans = await asyncio.gather(*(job.result(timeout=30) for job in batch))
    assert most_at_once(spans) == 4


async def test_jobs_arriving_on_two_idle_queues_at_once_keep_to_the_concurrency() -> None:
    # Both queues are watched for the one slot: the second job waits for it, then runs.
    async with (
        Queue("hi") as hi,
        Queue("lo") as lo,
        running_worker(["hi", "lo"], concurrency=1) as worker,
    ):
        feeder = worker._feeder
        assert feeder is not None
        await wait_until(lambda: all(puller.watching for puller in feeder._pullers))
        first, second = await asyncio.gather(
            hi.enqueue(jobs.async_sleep, 0.3), lo.enqueue(jobs.async_sleep, 0.3)
        )
        spans = await asyncio.gather(first.result(timeout=15), second.result(timeout=15))
    assert most_at_once(spans) == 1


async def test_a_busy_worker_leaves_a_new_job_to_an_idle_one() -> None:
    # The busy worker watched both queues while its slot was free; once the slot is taken
    # that watch must be gone, or it would take the next job and keep it behind the long one.
    async with Queue("hi") as hi, Queue("lo") as lo:
        async with running_worker(["hi", "lo"], concurrency=1, worker_name="busy") as busy:
            long = await lo.enqueue(jobs.async_sleep, 3)
            await wait_until(lambda: busy._state and busy._state.running)
            async with running_worker(["hi"], concurrency=1, worker_name="idle"):
                job = await hi.enqueue(jobs.async_sleep, 0)
                start = time.monotonic()
                await job.result(timeout=15)
                waited = time.monotonic() - start
                info = await job.info()
            await long.result(timeout=15)
    assert info.worker == "idle"
    assert waited < 2
