"""The live feed samples job changes that come faster than a screen could show them, and
loses none an operator needs: against a real nats-server, with the thresholds lowered so
that a few hundred jobs a second count as busy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import naq
from naq import JobStatus, Queue, feed_jobs
from naq.broker import Broker
from naq.feed import Feed
from naq.feed_jobs import JobSampling
from naq.models import StatusRecord
from naq.settings import get_settings
from naq.store import JobStore
from tests import jobs
from tests.helpers import running_worker, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "sampled"


@dataclass
class Seen:
    """What a feed emitted: each job's statuses in order, and its sampling events."""

    statuses: dict[str, list[str]] = field(default_factory=dict)
    sampling: list[JobSampling | None] = field(default_factory=list)
    #: Jobs first shown while sampling (not rows shown before, brought up to date), and the
    #: changes the samples said were made.
    shown_sampling: int = 0
    made_sampling: float = 0.0

    def last(self, job_id: str) -> str | None:
        return (self.statuses.get(job_id) or [None])[-1]


@contextlib.asynccontextmanager
async def watching() -> AsyncIterator[tuple[Feed, Seen]]:
    feed, seen = Feed(get_settings()), Seen()

    async def pump() -> None:
        async for event in feed.events():
            if event.kind == "job":
                status = "gone" if event.value is None else str(event.value.status)
                if event.key not in seen.statuses and seen.sampling and seen.sampling[-1]:
                    seen.shown_sampling += 1
                seen.statuses.setdefault(event.key, []).append(status)
            elif event.kind == "sampling":
                seen.sampling.append(event.value)
                if event.value is not None:
                    seen.made_sampling += event.value.rate * feed_jobs.SAMPLE_EVERY

    task = asyncio.create_task(pump())
    try:
        await wait_until(lambda: feed._jobs is not None, timeout=10)
        yield feed, seen
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


@pytest.fixture
def low_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_jobs, "SAMPLE_ABOVE", 40.0)
    monkeypatch.setattr(feed_jobs, "FOLLOW_BELOW", 20.0)
    monkeypatch.setattr(feed_jobs, "RATE_CHECK", 0.3)
    monkeypatch.setattr(feed_jobs, "SAMPLE_EVERY", 0.2)
    monkeypatch.setattr(feed_jobs, "SAMPLE_SIZE", 5)
    # Every job of the rush may be read while pending: none leaves the screen unended.
    monkeypatch.setattr(feed_jobs, "MAX_OPEN", 10_000)


@pytest.mark.usefixtures("low_thresholds")
async def test_busy_changes_are_sampled_and_nothing_needed_is_lost() -> None:
    async with Queue(Q) as queue, watching() as (feed, seen):
        # Shown pending before the rush: it must not be left saying so.
        early = await queue.enqueue(jobs.add, 1, 1)
        await wait_until(lambda: seen.last(early.job_id) == "pending")
        batch = await queue.enqueue_many([(jobs.noop, (), {})] * 3000)
        async with running_worker(Q, concurrency=20):
            await wait_until(lambda: any(s is not None for s in seen.sampling), timeout=15)
            sampling = next(s for s in seen.sampling if s is not None)
            assert sampling.every > 1 and sampling.rate > 40
            # While sampling: a failure, a long-running job and a filter match all show.
            failed = await queue.enqueue(jobs.fail, "sampled-out?")
            running = await queue.enqueue(jobs.async_sleep, 1.5)
            feed.set_job_filter("needle-in-the-rush")
            wanted = await queue.enqueue(jobs.add, 2, 2, meta={"tag": "needle-in-the-rush"})
            await wait_until(lambda: seen.last(failed.job_id) == "failed", timeout=15)
            await wait_until(lambda: "running" in seen.statuses.get(running.job_id, []))
            await wait_until(lambda: seen.last(running.job_id) == "completed", timeout=15)
            await wait_until(lambda: seen.last(wanted.job_id) == "completed", timeout=15)
            await wait_until(lambda: seen.last(early.job_id) == "completed", timeout=15)
            for job in batch[-50:]:
                await job.result(timeout=30)
            # Calm again: every change is shown once more, and the sampling note goes.
            await wait_until(lambda: seen.sampling[-1] is None, timeout=15)
            after = await queue.enqueue(jobs.add, 3, 3)
            await wait_until(lambda: seen.last(after.job_id) == "completed", timeout=10)
        assert seen.statuses[after.job_id][0] == "pending"
    # Sampled: far fewer changes were shown than were made meanwhile.
    assert seen.made_sampling > 1000
    assert seen.shown_sampling < seen.made_sampling / 4, (seen.shown_sampling, seen.made_sampling)


async def test_a_calm_feed_shows_every_change() -> None:
    async with Queue(Q) as queue, watching() as (_, seen), running_worker(Q):
        batch = [await queue.enqueue(jobs.add, i, 1) for i in range(20)]
        for job in batch:
            await job.result(timeout=10)
        await wait_until(lambda: all(seen.last(j.job_id) == "completed" for j in batch))
    assert seen.sampling == []
    assert all(seen.statuses[j.job_id][0] == "pending" for j in batch)


async def test_notable_statuses_come_on_their_own_subject() -> None:
    import nats

    from tests.helpers import prefix

    settings = get_settings()
    nc = await nats.connect(settings.nats_url)
    got: list[bytes] = []

    async def keep(msg: Any) -> None:
        got.append(msg.data)

    sub = await nc.subscribe(f"{prefix()}.events.jobs.*", cb=keep)
    try:
        async with Queue(Q) as queue, running_worker(Q):
            ok = await queue.enqueue(jobs.add, 1, 1)
            bad = await queue.enqueue(jobs.fail, "loud")
            await ok.result(timeout=10)
            with pytest.raises(naq.JobExecutionError):
                await bad.result(timeout=10)
            await wait_until(lambda: any(bad.job_id.encode() in data for data in got))
    finally:
        await sub.unsubscribe()
        await nc.close()
    # The failure came; the completion (like nearly every change of a busy system) did not.
    assert not any(ok.job_id.encode() in data for data in got)


def test_past_max_open_the_oldest_unended_job_leaves_the_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_jobs, "MAX_OPEN", 2)
    emitted: list[tuple[str, str | None]] = []
    follower = feed_jobs.JobFollower(
        None,  # type: ignore[arg-type]  # showing reads nothing
        lambda kind, key, value: emitted.append((key, value and value.status)),
    )
    now = time.time()
    for job_id in ("a", "b", "c"):
        record = StatusRecord(
            job_id=job_id, status="pending", queue=Q, function="f", enqueued_at=now, updated_at=now
        )
        follower._show_record(record)
    # "a" is no longer looked up again: it leaves rather than stay pending for good.
    assert emitted == [("a", "pending"), ("b", "pending"), ("a", None), ("c", "pending")]


@dataclass
class Following:
    """A follower that has shown 200 pending jobs (no worker runs them), and what it emits."""

    follower: feed_jobs.JobFollower
    broker: Broker
    pending: list[str]
    emitted: list[tuple[str, str | None]]

    async def cancel_all(self) -> None:
        """End every one of them (result, then status), as a cancellation does."""
        store = JobStore(self.broker)
        for job_id in self.pending:
            await store.end(job_id, JobStatus.CANCELLED, error="cancelled")

    def all_shown_cancelled(self) -> bool:
        return sorted(self.emitted) == sorted((job_id, "cancelled") for job_id in self.pending)


@pytest.fixture
async def following() -> Following:
    broker = await Broker.connect(get_settings())
    emitted: list[tuple[str, str | None]] = []

    def emit(kind: str, key: str, value: Any) -> None:
        if kind == "job":
            emitted.append((key, value and value.status))

    follower = feed_jobs.JobFollower(broker, emit)
    async with Queue(Q) as queue:
        pending = [job.job_id for job in await queue.enqueue_many([(jobs.noop, (), {})] * 200)]
    for job_id in pending:
        record = await broker.read_status(job_id)
        assert record is not None
        follower._show_record(record)
    emitted.clear()
    return Following(follower, broker, pending, emitted)


async def test_open_jobs_are_looked_up_again_and_only_their_changes_drawn(
    following: Following,
) -> None:
    follower, pending = following.follower, following.pending
    checks = feed_jobs.OPEN_CHECKS
    await follower._look_again()
    assert following.emitted == []  # none changed: nothing to draw
    # Those looked up went to the back: the next look starts after them.
    assert list(follower._open) == pending[checks:] + pending[:checks]
    await following.cancel_all()
    # Most of those looked up had ended: each look takes twice as many (40, 80, then 80 left).
    for _ in range(3):
        await follower._look_again()
    assert following.all_shown_cancelled()
    assert not follower._open


async def test_leaving_the_samples_every_open_job_is_looked_up_once_more(
    following: Following, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Calm from the first sample: two samples, then every change is read again.
    monkeypatch.setattr(feed_jobs, "SAMPLE_EVERY", 0.01)
    await following.cancel_all()
    await following.follower._sample()
    # Two samples look 40 and 80 up; the other 80 ended in changes the feed will not read.
    assert following.all_shown_cancelled()
    assert not following.follower._open
