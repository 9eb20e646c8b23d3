"""The ``*_sync`` helpers: many calls in a row, from threads, from inside a running event loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import naq
from tests import jobs
from tests.helpers import thread_worker

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "sync"


def test_enqueue_and_fetch_five_times_in_a_row() -> None:
    with thread_worker(Q):
        for i in range(5):
            job = naq.enqueue_sync(jobs.add, i, 10 * i, queue_name=Q)
            assert job.result_sync(timeout=10) == 11 * i
            assert naq.fetch_job_result_sync(job.job_id) == 11 * i
            assert naq.Job.fetch_result_sync(job.job_id) == 11 * i
        for i in range(5):
            job = naq.enqueue_sync(jobs.async_add, i, 1, queue_name=Q)
            info = naq.wait_for_job_sync(job.job_id, timeout=10)
            assert info.status == naq.JobStatus.COMPLETED
            assert info.result == i + 1
            assert naq.get_job_sync(job.job_id).result == i + 1


def test_sync_helpers_from_many_threads() -> None:
    barrier = threading.Barrier(4)

    def client(n: int) -> list[int]:
        barrier.wait(5)  # all threads call into naq at once
        values = []
        for i in range(3):
            job = naq.enqueue_sync(jobs.add, n, i, queue_name=Q)
            values.append(job.result_sync(timeout=10))
            assert naq.fetch_job_result_sync(job.job_id) == n + i
        return values

    with thread_worker(Q), ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, [100, 200, 300, 400]))
    assert results == [[n, n + 1, n + 2] for n in (100, 200, 300, 400)]


def test_failed_job_raises_through_the_sync_helpers() -> None:
    with thread_worker(Q):
        job = naq.enqueue_sync(jobs.fail, "sync boom", queue_name=Q)
        with pytest.raises(naq.JobExecutionError, match="sync boom"):
            job.result_sync(timeout=10)
        with pytest.raises(naq.JobExecutionError, match="sync boom"):
            naq.fetch_job_result_sync(job.job_id)


async def test_sync_helpers_called_inside_a_running_event_loop() -> None:
    # A plain (blocking) call from a coroutine: the helpers run on naq's own loop, so this
    # loop being busy must not deadlock them. The worker lives in another thread.
    assert asyncio.get_running_loop().is_running()
    with thread_worker(Q):
        for i in range(3):
            job = naq.enqueue_sync(jobs.add, i, 2, queue_name=Q)
            assert job.result_sync(timeout=10) == i + 2
            assert naq.fetch_job_result_sync(job.job_id) == i + 2
        jobs_ = naq.enqueue_many_sync(
            [(jobs.add, (1, 1), {}), (jobs.add, (2, 2), {})], queue_name=Q
        )
        assert [job.result_sync(timeout=10) for job in jobs_] == [2, 4]
        # The async API still works on this loop afterwards.
        job = await naq.enqueue(jobs.add, 5, 5, queue_name=Q)
        assert await job.result(timeout=10) == 10


async def test_sync_helpers_from_the_loops_thread_pool() -> None:
    loop = asyncio.get_running_loop()
    with thread_worker(Q):
        job = await loop.run_in_executor(
            None, lambda: naq.enqueue_sync(jobs.add, 3, 4, queue_name=Q)
        )
        value = await loop.run_in_executor(None, job.result_sync, 10)
        assert value == 7
        assert await loop.run_in_executor(None, naq.fetch_job_result_sync, job.job_id) == 7


def test_fetch_result_of_unknown_job_raises_not_found() -> None:
    job_id = uuid.uuid4().hex
    with pytest.raises(naq.JobNotFoundError) as caught:
        naq.fetch_job_result_sync(job_id)
    assert job_id in str(caught.value)
    with pytest.raises(naq.JobNotFoundError):
        naq.get_job_sync(job_id)


def test_fetch_result_of_pending_job_raises_not_found_then_value() -> None:
    job = naq.enqueue_sync(jobs.add, 20, 22, queue_name=Q)
    with pytest.raises(naq.JobNotFoundError):
        naq.fetch_job_result_sync(job.job_id)
    assert naq.get_job_sync(job.job_id).status == naq.JobStatus.PENDING
    with thread_worker(Q):
        assert job.result_sync(timeout=10) == 42
    assert naq.fetch_job_result_sync(job.job_id) == 42


def test_result_sync_times_out_without_a_worker() -> None:
    job = naq.enqueue_sync(jobs.add, 1, 1, queue_name=Q)
    with pytest.raises(naq.JobTimeoutError):
        job.result_sync(timeout=0.3)
    assert naq.purge_queue_sync(Q) == 1
