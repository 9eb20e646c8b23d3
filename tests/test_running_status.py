"""The "running" status write, at once or after ``NAQ_RUNNING_STATUS_DELAY``.

By default every job's status goes pending -> running -> outcome. With a delay, a
job that ends sooner goes from pending straight to its outcome (one write saved
per job), and a longer one still shows as running.
"""

from __future__ import annotations

import pytest

from naq import JobStatus, Queue
from naq.errors import ConfigurationError
from naq.settings import Settings
from tests import jobs
from tests.helpers import StatusWatch, running_worker


def statuses(watch: StatusWatch, job_id: str) -> list[str]:
    return [event.status for event in watch.events if event.job_id == job_id]


async def test_with_a_delay_only_jobs_that_outlast_it_show_as_running(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAQ_RUNNING_STATUS_DELAY", "0.2")
    async with (
        Queue("delayed") as queue,
        running_worker("delayed"),
        StatusWatch(nats_url, "delayed") as watch,
    ):
        quick = await queue.enqueue(jobs.add, 1, 2)
        slow = await queue.enqueue(jobs.async_sleep, 0.6)
        assert await quick.result(timeout=10) == 3
        await slow.result(timeout=10)
        await watch.status(quick.job_id, JobStatus.COMPLETED)
        await watch.status(slow.job_id, JobStatus.COMPLETED)
    assert statuses(watch, quick.job_id) == [JobStatus.PENDING, JobStatus.COMPLETED]
    assert statuses(watch, slow.job_id) == [
        JobStatus.PENDING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
    ]


def test_a_negative_delay_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="NAQ_RUNNING_STATUS_DELAY=-1.0"):
        Settings.from_env({"NAQ_RUNNING_STATUS_DELAY": "-1"})
