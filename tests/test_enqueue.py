"""Enqueueing on a real nats-server: values, errors, options, refusals, idempotency, batches."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import naq
from naq import Queue
from naq.job import new_job_id
from tests import jobs
from tests.helpers import running_worker

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "enq"


async def test_sync_and_async_jobs_complete_with_their_values() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        sync_job = await queue.enqueue(jobs.add, 2, 3)
        async_job = await queue.enqueue(jobs.async_add, 40, 2)
        by_kwargs = await queue.enqueue(jobs.add, a=-7, b=10)
        assert await sync_job.result(timeout=10) == 5
        assert await async_job.result(timeout=10) == 42
        assert await by_kwargs.result(timeout=10) == 3
        # The stored outcome is readable afterwards too, by id.
        assert await naq.fetch_job_result(async_job.job_id) == 42
        info = await naq.get_job(sync_job.job_id)
        assert info.status == naq.JobStatus.COMPLETED
        assert info.result == 5
        assert info.function == "tests.jobs:add"


async def test_failed_job_raises_with_remote_error_and_traceback() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.fail, "kaboom 17")
        with pytest.raises(naq.JobExecutionError) as caught:
            await job.result(timeout=10)
        err = caught.value
        assert err.job_id == job.job_id
        assert err.error is not None and "ValueError" in err.error and "kaboom 17" in err.error
        assert "kaboom 17" in str(err)
        assert err.remote_traceback is not None
        assert "in fail" in err.remote_traceback
        assert "jobs.py" in err.remote_traceback
        # fetch_job_result raises the same way for a failed job.
        with pytest.raises(naq.JobExecutionError, match="kaboom 17"):
            await naq.fetch_job_result(job.job_id)


async def test_job_options_never_reach_the_function() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(
            jobs.echo_kwargs,
            1,
            "two",
            colour="blue",
            timeout=30,
            result_ttl=120,
            meta={"owner": "tests"},
            job_id="opts-job-1",
            retry_strategy="exponential",
            retry_jitter=0.1,
            retry_on=[KeyError],
            ignore_on=[TypeError],
            max_retries=2,
            retry_delay=0.5,
            depends_on=None,
        )
        assert job.job_id == "opts-job-1"
        assert await job.result(timeout=10) == {"args": [1, "two"], "kwargs": {"colour": "blue"}}
        info = await naq.get_job("opts-job-1")
        assert info.meta == {"owner": "tests"}
        assert info.max_retries == 2


async def test_module_level_enqueue_splits_options_too() -> None:
    async with running_worker(Q):
        job = await naq.enqueue(jobs.echo_kwargs, x=1, timeout=5, meta={"a": 1}, queue_name=Q)
        assert await job.result(timeout=10) == {"args": [], "kwargs": {"x": 1}}


async def test_enqueue_call_passes_a_kwarg_named_timeout_to_the_function() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue_call(
            jobs.echo_kwargs,
            args=("a",),
            kwargs={"timeout": 7, "meta": "mine", "job_id": "not-an-option"},
            timeout=30,
            meta={"real": True},
        )
        assert job.timeout == 30
        assert await job.result(timeout=10) == {
            "args": ["a"],
            "kwargs": {"timeout": 7, "meta": "mine", "job_id": "not-an-option"},
        }
        assert (await naq.get_job(job.job_id)).meta == {"real": True}


async def test_lambda_is_refused_with_advice() -> None:
    async with Queue(Q) as queue:
        with pytest.raises(naq.SerializationError) as caught:
            await queue.enqueue(lambda x: x + 1, 1)
        message = str(caught.value)
        assert "lambda" in message
        assert "module-level function" in message
        # Nothing was enqueued.
        assert await queue.purge() == 0


async def test_closure_is_refused_with_advice() -> None:
    factor = 3

    def times(x: int) -> int:
        return x * factor

    async with Queue(Q) as queue:
        with pytest.raises(naq.SerializationError) as caught:
            await queue.enqueue(times, 2)
        message = str(caught.value)
        assert "times" in message
        assert "closure" in message and "module level" in message
        assert await queue.purge() == 0


async def test_same_job_id_enqueued_twice_runs_once(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with Queue(Q) as queue:
        first = await queue.enqueue(jobs.record_run, str(log), "once", job_id="dup-1")
        second = await queue.enqueue(jobs.record_run, str(log), "once", job_id="dup-1")
        assert first.job_id == second.job_id == "dup-1"
        async with running_worker(Q, concurrency=1):
            assert await first.result(timeout=10) == "once"
            assert await second.result(timeout=10) == "once"
            # Once more after it finished, then a sentinel: with one slot the queue is FIFO,
            # so when the sentinel is done any duplicate would have run already.
            third = await queue.enqueue(jobs.record_run, str(log), "once", job_id="dup-1")
            sentinel = await queue.enqueue(jobs.add, 1, 1)
            assert await sentinel.result(timeout=10) == 2
            assert await third.result(timeout=10) == "once"
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("once ")


async def test_purge_returns_the_number_of_pending_jobs() -> None:
    async with Queue("purge-me") as queue:
        for i in range(7):
            await queue.enqueue(jobs.add, i, i)
        other = Queue("purge-other")
        await other.enqueue(jobs.add, 1, 1)
        assert await queue.purge() == 7
        assert await queue.purge() == 0
        # Only that queue was purged.
        assert await naq.purge_queue("purge-other") == 1
        assert await naq.purge_queue("purge-other") == 0


async def test_enqueue_many_thousand_jobs_drained_by_a_worker() -> None:
    queue = Queue("many")
    calls: list[Any] = [(jobs.add, (i, 1000 + i), {}) for i in range(1000)]
    enqueued = await queue.enqueue_many(calls)
    assert len(enqueued) == 1000
    assert len({job.job_id for job in enqueued}) == 1000
    worker = naq.Worker(
        "many", concurrency=50, burst=True, install_signal_handlers=False, shutdown_grace=2
    )
    # Burst mode: run() returns once the queue is drained.
    await asyncio.wait_for(worker.run(), 40)
    assert worker.processed == 1000
    assert worker.failed == 0
    values = await asyncio.gather(*(naq.fetch_job_result(job.job_id) for job in enqueued))
    assert values == [2 * i + 1000 for i in range(1000)]
    assert await queue.purge() == 0


async def test_enqueue_many_options_never_reach_the_function() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        batch = await queue.enqueue_many(
            [
                (jobs.echo_kwargs, (1,), {"a": 1}, {"timeout": 5, "meta": {"n": 1}}),
                (jobs.echo_kwargs, (), {"timeout": 2}),  # no options: a kwarg of the function
                (jobs.echo_kwargs,),
            ]
        )
        assert [await job.result(timeout=10) for job in batch] == [
            {"args": [1], "kwargs": {"a": 1}},
            {"args": [], "kwargs": {"timeout": 2}},
            {"args": [], "kwargs": {}},
        ]
        assert batch[0].timeout == 5 and batch[1].timeout is None
        assert (await naq.get_job(batch[0].job_id)).meta == {"n": 1}


@pytest.mark.parametrize("name", ["bad name", "a.b", "q*", "", "é"])
async def test_invalid_queue_name_refused_naming_the_value(name: str) -> None:
    with pytest.raises(naq.InvalidQueueNameError) as caught:
        Queue(name or "x y")
    assert repr(name or "x y") in str(caught.value)
    if name:
        with pytest.raises(naq.InvalidQueueNameError, match=repr(name).replace("*", r"\*")):
            await naq.enqueue(jobs.add, 1, 2, queue_name=name)
        with pytest.raises(naq.InvalidQueueNameError):
            naq.Worker(name)


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"max_retries": -1}, "max_retries=-1"),
        ({"timeout": 0}, "timeout=0"),
        ({"timeout": -2.5}, "timeout=-2.5"),
        ({"retry_strategy": "sometimes"}, "'sometimes'"),
        ({"retry_delay": -1}, "retry_delay=-1"),
        ({"result_ttl": 0}, "result_ttl=0"),
        ({"result_ttl": 2**63}, "result_ttl=9223372036854775808"),
        ({"job_id": "has space"}, "'has space'"),
        ({"retry_on": "not a class"}, "'not a class'"),
    ],
)
async def test_bad_option_values_refused_naming_the_value(
    options: dict[str, Any], shown: str
) -> None:
    async with Queue(Q) as queue:
        with pytest.raises(naq.ConfigurationError) as caught:
            await queue.enqueue(jobs.add, 1, 2, **options)
        assert shown in str(caught.value)
        # The refused job left nothing behind.
        assert await queue.purge() == 0


async def test_datetime_argument_arrives_as_a_datetime() -> None:
    moment = datetime(2024, 2, 29, 13, 14, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.when, moment)
        by_kw = await queue.enqueue(jobs.when, moment=moment.astimezone(timezone.utc))
        # jobs.when asserts isinstance(moment, datetime): a plain string would fail the job.
        iso = await job.result(timeout=10)
        assert datetime.fromisoformat(iso) == moment
        assert iso == moment.isoformat()
        assert datetime.fromisoformat(await by_kw.result(timeout=10)) == moment


async def test_registered_task_enqueued_by_name() -> None:
    async with Queue(Q) as queue, running_worker(Q, module_paths=["tests.jobs"]):
        job = await queue.enqueue("tests.multiply", 6, 7)
        assert await job.result(timeout=10) == 42
        info = await naq.get_job(job.job_id)
        assert info.function == "tests.multiply"
        # Enqueued by the function object, it travels under its registered name.
        by_func = await queue.enqueue(jobs.multiply, 3, 5)
        assert by_func.function_ref == "tests.multiply"
        assert await by_func.result(timeout=10) == 15


async def test_task_default_options_apply_when_enqueued() -> None:
    # @naq.task(name="tests.multiply", max_retries=2): the registered defaults are the job's
    # options unless the caller overrides them.
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.multiply, 3, 5)
        overridden = await queue.enqueue(jobs.multiply, 3, 5, max_retries=0)
        assert overridden.max_retries == 0
        assert job.max_retries == 2
        assert await queue.purge() == 2


async def test_unknown_task_name_fails_the_job_clearly() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue("tests.no_such_task", 1)
        with pytest.raises(naq.JobExecutionError, match="tests.no_such_task"):
            await job.result(timeout=10)


def test_generated_job_ids_are_random_version_4_uuids() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        parsed = uuid.UUID(hex=job_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, job_id)
