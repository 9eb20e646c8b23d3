"""The "running" status write, after ``NAQ_RUNNING_STATUS_DELAY`` (0.05 s by default).

A job that ends sooner goes from pending straight to its outcome in the status
bucket (one write saved per job); ``watch_jobs`` still reports it running, from the
outcome record. A longer job has its running status written while it runs.
"""

from __future__ import annotations

import msgspec
import pytest

import naq
from naq import JobStatus, Queue
from naq.broker import Broker
from naq.errors import ConfigurationError
from naq.history import RunningSeen
from naq.models import StatusRecord, status_decoder
from naq.settings import Settings, get_settings
from tests import jobs
from tests.helpers import StatusWatch, running_worker


def watched(watch: StatusWatch, job_id: str) -> list[str]:
    return [event.status for event in watch.events if event.job_id == job_id]


async def written(job_id: str) -> list[str]:
    """The statuses the bucket holds for ``job_id``, oldest first."""
    broker = await Broker.connect(get_settings())
    kv = await broker.connection.js.key_value(broker.names.status_bucket)
    return [status_decoder.decode(entry.value).status for entry in await kv.history(job_id)]


async def test_a_quick_job_is_reported_running_without_a_running_write(nats_url: str) -> None:
    async with (
        Queue("delayed") as queue,
        running_worker("delayed"),
        StatusWatch(nats_url, "delayed") as watch,
    ):
        quick = await queue.enqueue(jobs.add, 1, 2)
        slow = await queue.enqueue(jobs.async_sleep, 0.4)
        assert await quick.result(timeout=10) == 3
        await slow.result(timeout=10)
        done = await watch.status(quick.job_id, JobStatus.COMPLETED)
        await watch.status(slow.job_id, JobStatus.COMPLETED)
        assert await written(quick.job_id) == [JobStatus.PENDING, JobStatus.COMPLETED]
        assert await written(slow.job_id) == [
            JobStatus.PENDING,
            JobStatus.RUNNING,
            JobStatus.COMPLETED,
        ]
    every_change = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED]
    assert watched(watch, quick.job_id) == every_change
    assert watched(watch, slow.job_id) == every_change
    # The reported running state is the attempt's: its worker, and when it started.
    running = next(
        e for e in watch.events if e.job_id == quick.job_id and e.status == JobStatus.RUNNING
    )
    assert (running.worker, running.attempt) == (done.worker, done.attempt)
    assert running.updated_at <= done.updated_at


async def test_with_no_delay_every_job_has_its_running_status_written(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAQ_RUNNING_STATUS_DELAY", "0")
    async with (
        Queue("undelayed") as queue,
        running_worker("undelayed"),
        StatusWatch(nats_url, "undelayed") as watch,
    ):
        quick = await queue.enqueue(jobs.add, 1, 2)
        assert await quick.result(timeout=10) == 3
        await watch.status(quick.job_id, JobStatus.COMPLETED)
        assert await written(quick.job_id) == [
            JobStatus.PENDING,
            JobStatus.RUNNING,
            JobStatus.COMPLETED,
        ]
    # Seen once: the written running status, not one derived from the outcome as well.
    assert watched(watch, quick.job_id) == [
        JobStatus.PENDING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
    ]


def test_a_negative_delay_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="NAQ_RUNNING_STATUS_DELAY=-1.0"):
        Settings.from_env({"NAQ_RUNNING_STATUS_DELAY": "-1"})


# -- which running states a watcher reports from an outcome (pure logic) ----------------


def record(status: str, attempt: int = 1, started_at: float | None = 5.0) -> StatusRecord:
    return StatusRecord(
        job_id="j1",
        status=status,
        queue="q",
        function="m:f",
        enqueued_at=1.0,
        updated_at=9.0,
        attempt=attempt,
        started_at=started_at,
    )


def test_an_outcome_reports_its_running_state_unless_it_was_seen() -> None:
    seen = RunningSeen()
    assert not seen.missed(record(JobStatus.PENDING, 0, None))
    assert seen.missed(record(JobStatus.COMPLETED))
    # Attempt 1 seen running, its retry is not a missed running state; attempt 2's is.
    assert not seen.missed(record(JobStatus.RUNNING, 1))
    assert not seen.missed(record(JobStatus.RETRY, 1))
    assert seen.missed(record(JobStatus.FAILED, 2))
    # A cancellation or an outcome with no start (refused, never ran) reports nothing.
    assert not seen.missed(record(JobStatus.CANCELLED))
    assert not seen.missed(record(JobStatus.FAILED, 0, None))


def test_the_watcher_forgets_the_oldest_running_jobs_past_its_limit() -> None:
    seen = RunningSeen(limit=2)
    for job_id in ("a", "b", "c"):
        seen.missed(msgspec.structs.replace(record(JobStatus.RUNNING), job_id=job_id))
    ended = [
        seen.missed(msgspec.structs.replace(record(JobStatus.COMPLETED), job_id=job_id))
        for job_id in ("a", "b", "c")
    ]
    assert ended == [True, False, False]


async def test_no_running_status_is_still_due_when_a_failure_is_recorded(nats_url: str) -> None:
    # A failed attempt's retry status (or its dead letter and result) is written while the
    # job's running status could fall due: that write must already be called off, or the
    # history would read running after the retry.
    due_at_failure: list[bool] = []
    async with Queue("failing") as queue, running_worker("failing", concurrency=1) as worker:
        assert worker._outcomes is not None and worker._state is not None
        outcomes, state = worker._outcomes, worker._state
        record_failure = outcomes.failed_attempt

        async def checked(*args: object, **kwargs: object) -> None:
            due_at_failure.append(any(job.announcement for job in state.held_jobs()))
            await record_failure(*args, **kwargs)  # type: ignore[arg-type]

        outcomes.failed_attempt = checked  # type: ignore[method-assign]
        job = await queue.enqueue(jobs.fail, "no", max_retries=2, retry_delay=0)
        with pytest.raises(naq.JobExecutionError):
            await job.result(timeout=10)
        info = await naq.get_job(job.job_id)
    assert due_at_failure == [False, False, False]
    assert (info.status, info.attempt) == (JobStatus.FAILED, 3)
