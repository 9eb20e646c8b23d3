"""Queue latency: the age of each queue's oldest pending job, read from the stream."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

import naq
from naq import JobStatus, Queue
from naq.feed import Feed
from naq.monitor import QueueStats
from naq.settings import get_settings
from tests import jobs
from tests.helpers import StatusWatch, naq_cli, running_worker

pytestmark = pytest.mark.usefixtures("nats_url")


async def test_latency_is_zero_with_nothing_pending() -> None:
    async with Queue("lat-empty") as queue:
        assert (await queue.stats()).latency == 0.0
        async with running_worker("lat-empty"):
            job = await queue.enqueue(jobs.add, 1, 2)
            assert await job.result(timeout=10) == 3
        stats = await queue.stats()
    assert (stats.pending, stats.latency) == (0, 0.0)


async def test_latency_is_the_age_of_the_oldest_pending_job_until_a_worker_drains_it() -> None:
    async with Queue("lat-pending") as queue:
        await queue.enqueue(jobs.add, 1, 2)
        first_stored = time.time()  # the enqueue returned: the job was stored before this
        # Later jobs, so that the newest job's age would be too small an answer.
        for i in range(100):
            await queue.enqueue(jobs.add, i, i)
        # No consumer yet: the whole subject is pending (the listing, made without one).
        waited = time.time() - first_stored
        (listed,) = await naq.all_queue_stats()
        assert listed.name == "lat-pending" and listed.pending == 101
        assert listed.latency >= waited
        before_call = time.time() - first_stored
        stats = await queue.stats()  # makes the consumer; nothing delivered yet
        after_call = time.time() - first_stored
        assert before_call <= stats.latency
        # Stored before ``first_stored`` by no more than the first enqueue took.
        assert stats.latency <= after_call + 5
        assert stats.latency >= listed.latency

        async with running_worker("lat-pending", concurrency=20):
            # Delivered in order: once the newest job ran, every job was delivered.
            newest = await queue.enqueue(jobs.noop)
            await newest.wait(timeout=10)
        stats = await queue.stats()
    assert (stats.pending, stats.latency) == (0, 0.0)


async def test_a_job_delivered_and_waiting_for_its_retry_is_not_pending(nats_url: str) -> None:
    async with Queue("lat-retry") as queue, StatusWatch(nats_url, "lat-retry") as watch:
        retrying = await queue.enqueue(jobs.fail, max_retries=1, retry_delay=120)
        retry_stored_by = time.time()
        async with running_worker("lat-retry"):
            await watch.status(retrying.job_id, JobStatus.RETRY)
        # The retry is still in the stream, delivered, older than what comes now.
        pending_stored_from = time.time()
        await queue.enqueue(jobs.noop)
        stats = await queue.stats()
        now = time.time()
    assert (stats.pending, stats.running) == (1, 1)
    # The pending job's age, not the older retry's.
    assert 0.0 < stats.latency <= now - pending_stored_from < now - retry_stored_by


async def test_naq_queues_shows_the_latency_and_its_json_has_it() -> None:
    async with Queue("lat-cli") as queue:
        await queue.enqueue(jobs.noop)
        stored = time.time()
        table = await naq_cli("queues", "lat-cli")
        waited = time.time() - stored
        as_json = await naq_cli("queues", "lat-cli", "--json")
    (row,) = as_json.json()
    assert row["name"] == "lat-cli" and row["pending"] == 1
    assert waited <= row["latency"] <= time.time() - stored + 5
    assert "latency" in table.out and "pending" in table.out, table.out


async def test_the_feed_gives_the_tui_each_queue_latency() -> None:
    async with Queue("lat-feed") as queue:
        await queue.enqueue(jobs.noop)
        stored = time.time()
        events = Feed(get_settings()).events()
        try:

            async def pending_row() -> QueueStats:
                async for event in events:
                    if event.kind == "queue" and event.key == "lat-feed":
                        return cast(QueueStats, event.value)
                raise AssertionError("the feed ended")

            waited = time.time() - stored
            row = await asyncio.wait_for(pending_row(), 10)
        finally:
            await events.aclose()
    assert row.pending == 1 and row.latency >= waited
