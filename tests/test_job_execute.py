"""``Job.execute`` and ``Queue.stream_name``: the seeds' in-process run of a job."""

from __future__ import annotations

import asyncio

import pytest

import naq
from naq.job import Job
from tests import jobs


def test_execute_runs_a_sync_function_and_returns_its_value() -> None:
    assert Job(jobs.add, (2, 3)).execute() == 5


def test_execute_runs_an_async_function_outside_and_inside_a_running_loop() -> None:
    job = Job(jobs.async_add, (4, 5))
    assert job.execute() == 9

    async def inside() -> int:
        return job.execute()

    assert asyncio.run(inside()) == 9


def test_execute_resolves_a_function_given_by_name() -> None:
    assert Job("tests.jobs:multiply", (6, 7)).execute() == 42


def test_execute_records_the_error_and_raises_job_execution_error() -> None:
    job = Job(jobs.fail, ("bad input",))
    with pytest.raises(naq.JobExecutionError) as caught:
        job.execute()
    assert job.error == "ValueError: bad input"
    assert caught.value.job_id == job.job_id
    assert "bad input" in (caught.value.error or "")
    assert job.traceback is not None and "tests/jobs.py" in job.traceback


def test_queue_stream_name_is_the_jobs_stream() -> None:
    settings = naq.get_settings().replace(prefix="acme")
    assert naq.Queue("q", settings=settings).stream_name == "acme_jobs"
