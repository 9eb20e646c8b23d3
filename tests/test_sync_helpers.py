"""The ``*_sync`` helpers: many calls in a row, from threads, from inside a running event loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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


# -- every async function has its twin ------------------------------------------------------


def public_async_functions() -> dict[str, Any]:
    return {
        name: getattr(naq, name)
        for name in naq.__all__
        if inspect.iscoroutinefunction(getattr(naq, name))
    }


def test_every_public_async_function_has_a_sync_twin_with_the_same_parameters() -> None:
    functions = public_async_functions()
    assert {"requeue_failed_jobs", "delete_failed_jobs", "all_queue_stats"} <= set(functions)
    for name, function in functions.items():
        assert f"{name}_sync" in naq.__all__, name
        twin = getattr(naq, f"{name}_sync")
        assert not inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin).parameters == inspect.signature(function).parameters, name
        assert twin.__doc__ and "Blocking form of" in twin.__doc__, name
    # The methods users call from sync code, the settings= argument kept.
    for owner, method in ((naq.Queue, "stats"), (naq.Job, "result"), (naq.Job, "fetch_result")):
        twin, function = getattr(owner, f"{method}_sync"), getattr(owner, method)
        assert inspect.signature(twin).parameters == inspect.signature(function).parameters
    assert "settings" in inspect.signature(naq.get_job_sync).parameters


def test_the_new_twins_from_threads_and_in_a_row(tmp_path: Path) -> None:
    settings = naq.get_settings()
    queue = naq.Queue(Q)
    with thread_worker(Q):
        for i in range(2):
            job = naq.enqueue_sync(jobs.flaky, str(tmp_path / f"count{i}"), 1, queue_name=Q)
            assert naq.wait_for_job_sync(job.job_id, timeout=10).status == naq.JobStatus.FAILED
            assert naq.requeue_failed_jobs_sync(Q, settings=settings) == 1
            assert job.result_sync(timeout=10) == 2
        failing = [naq.enqueue_sync(jobs.fail, "x", queue_name=Q) for _ in range(2)]
        for job in failing:
            job.wait_sync(timeout=10)
    with ThreadPoolExecutor(2) as pool:
        stats = list(pool.map(lambda _: queue.stats_sync(), range(2)))
        everything = pool.submit(naq.all_queue_stats_sync, [Q]).result()
    assert [s.failed for s in stats] == [2, 2]
    assert [(s.name, s.failed) for s in everything] == [(Q, 2)]
    assert naq.delete_failed_jobs_sync(Q) == 2
    assert naq.list_failed_jobs_sync(Q) == []


async def test_the_new_twins_inside_a_running_event_loop() -> None:
    assert asyncio.get_running_loop().is_running()
    assert naq.delete_failed_jobs_sync(Q) == 0
    assert naq.requeue_failed_jobs_sync(Q) == 0
    assert naq.Queue(Q).stats_sync().pending == 0
    assert [s.name for s in naq.all_queue_stats_sync([Q])] == [Q]
