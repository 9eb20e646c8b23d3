"""In-process workers against a real nats-server: retries, timeouts, concurrency, bad input,
allowed modules, heartbeats, burst mode."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import cloudpickle
import nats
import pytest

import naq
from naq import Queue
from naq.models import JobEnvelope, envelope_encoder
from tests import jobs
from tests.helpers import (
    dead_letter_subscription,
    next_dead_letter,
    prefix,
    read_dead_letters,
    running_worker,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "work"


# -- retries -------------------------------------------------------------------------------


async def test_retries_then_success(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.flaky, str(counter), 2, max_retries=3, retry_delay=0.1)
        assert await job.result(timeout=15) == 3
        info = await naq.get_job(job.job_id)
    assert counter.read_text() == "3"
    assert info.status == naq.JobStatus.COMPLETED
    assert info.attempt == 3
    assert info.max_retries == 3


async def test_retry_is_visible_while_waiting(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.flaky, str(counter), 1, max_retries=1, retry_delay=1.0)

        async def retrying() -> naq.JobInfo | None:
            info = await naq.get_job(job.job_id)
            return info if info.status == naq.JobStatus.RETRY else None

        info = await wait_until(retrying, timeout=5)
        assert info.attempt == 1
        assert info.error is not None and "flaky failure 1" in info.error
        assert info.next_retry_at is not None and info.next_retry_at > time.time() - 0.5
        assert await job.result(timeout=10) == 2
    assert (await naq.get_job(job.job_id)).attempt == 2


async def test_retries_exhausted_fail_and_dead_letter(nats_url: str, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.flaky, str(counter), 10, max_retries=2, retry_delay=0.1)
        with pytest.raises(naq.JobExecutionError) as caught:
            await job.result(timeout=15)
    assert "flaky failure 3" in (caught.value.error or "")
    assert caught.value.remote_traceback and "in flaky" in caught.value.remote_traceback
    assert counter.read_text() == "3"
    info = await naq.get_job(job.job_id)
    assert info.status == naq.JobStatus.FAILED
    assert info.attempt == 3
    letters = await read_dead_letters(nats_url, Q)
    assert [letter.job_id for letter in letters] == [job.job_id]
    letter = letters[0]
    assert letter.attempt == 3
    assert letter.function == "tests.jobs:flaky"
    assert "flaky failure 3" in (letter.error or "")
    assert letter.reason
    # The original message travels with the dead letter, so it can be requeued.
    assert naq.Job.deserialize(letter.payload).job_id == job.job_id


@pytest.mark.parametrize(
    ("policy", "runs", "succeeds"),
    [
        ({"retry_on": [ValueError]}, 1, False),  # flaky raises RuntimeError: not retried
        ({"retry_on": [RuntimeError]}, 2, True),
        ({"retry_on": [Exception]}, 2, True),  # matched through the exception's classes
        ({"ignore_on": [RuntimeError]}, 1, False),
        ({"ignore_on": [KeyError]}, 2, True),
    ],
)
async def test_retry_on_and_ignore_on(
    tmp_path: Path, policy: dict[str, object], runs: int, succeeds: bool
) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(
            jobs.flaky, str(counter), 1, max_retries=3, retry_delay=0.05, **policy
        )
        if succeeds:
            assert await job.result(timeout=10) == runs
        else:
            with pytest.raises(naq.JobExecutionError, match="flaky failure 1"):
                await job.result(timeout=10)
    assert counter.read_text() == str(runs)


# -- timeouts and concurrency ------------------------------------------------------------


async def test_sync_timeout_enforced_and_slot_freed() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=1):
        start = time.monotonic()
        slow = await queue.enqueue(jobs.sleep, 5, timeout=0.5)
        after = await queue.enqueue(jobs.add, 20, 1)
        with pytest.raises(naq.JobExecutionError) as caught:
            await slow.result(timeout=10)
        failed_after = time.monotonic() - start
        assert await after.result(timeout=10) == 21
        done_after = time.monotonic() - start
    assert "timeout" in str(caught.value).lower()
    assert "0.5" in (caught.value.error or "")
    assert failed_after < 2.0
    # The next job did not wait for the abandoned 5 s thread.
    assert done_after < 3.0
    info = await naq.get_job(slow.job_id)
    assert info.status == naq.JobStatus.FAILED


async def test_async_timeout_enforced() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=1):
        start = time.monotonic()
        slow = await queue.enqueue(jobs.async_sleep, 5, timeout=0.3)
        after = await queue.enqueue(jobs.async_add, 1, 2)
        with pytest.raises(naq.JobExecutionError, match="(?i)timeout"):
            await slow.result(timeout=10)
        assert await after.result(timeout=10) == 3
        assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("timeout", [None, 30.0])
@pytest.mark.parametrize("func", [jobs.raise_timeout, jobs.async_raise_timeout])
async def test_a_jobs_own_timeout_error_is_an_ordinary_failure(
    func: object, timeout: float | None
) -> None:
    # On 3.11+ asyncio's TimeoutError is the builtin one: a job raising it has not exceeded
    # its timeout (and with none, the handling of its error must not break); its own error is
    # retried per its policy like any other.
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(
            func,  # type: ignore[arg-type]
            "boom",
            timeout=timeout,
            max_retries=1,
            retry_delay=0,
            retry_on=(TimeoutError,),
        )
        with pytest.raises(naq.JobExecutionError) as caught:
            await job.result(timeout=15)
        info = await naq.get_job(job.job_id)
    assert caught.value.error == "TimeoutError: boom"
    assert (info.status, info.attempt) == (naq.JobStatus.FAILED, 2)


@pytest.mark.parametrize("func", [jobs.sleep, jobs.async_sleep])
async def test_a_job_past_its_timeout_still_reports_the_timeout(func: object) -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(func, 5, timeout=0.2)  # type: ignore[arg-type]
        with pytest.raises(naq.JobExecutionError) as caught:
            await job.result(timeout=15)
    assert caught.value.error == "JobTimeout: job exceeded its timeout of 0.2s"


async def test_eight_async_jobs_overlap_with_concurrency_eight() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=8):
        start = time.monotonic()
        batch = await queue.enqueue_many([(jobs.async_sleep, (1.0,), {}) for _ in range(8)])
        spans = await asyncio.gather(*(job.result(timeout=10) for job in batch))
        wall = time.monotonic() - start
    starts = [span[0] for span in spans]
    assert wall < 3.0
    assert max(starts) - min(starts) < 0.5
    assert all(end - begin >= 0.99 for begin, end in spans)


async def test_sync_jobs_run_in_parallel_threads() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=4):
        start = time.monotonic()
        batch = await queue.enqueue_many([(jobs.sleep, (1.0,), {}) for _ in range(4)])
        ends = await asyncio.gather(*(job.result(timeout=10) for job in batch))
        wall = time.monotonic() - start
    assert wall < 2.5
    assert max(ends) - min(ends) < 0.5


# -- bad input on the queue subject ------------------------------------------------------


class _CreatesFileWhenUnpickled:
    """Unpickling this calls ``open(path, "w")``: proof that a payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _pickled_call(marker: Path) -> bytes:
    def write_marker(path: str) -> None:  # would run the job: a callable shipped by value
        Path(path).write_text("executed\n")

    return cloudpickle.dumps(
        (write_marker, (str(marker),), {"_": _CreatesFileWhenUnpickled(str(marker))})
    )


async def test_malformed_and_pickled_messages_are_dead_lettered(
    nats_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "executed"
    subject = f"{prefix()}.queue.{Q}"
    pickled_id = "pickled-" + uuid.uuid4().hex[:8]
    envelope = JobEnvelope(
        id=pickled_id,
        fn="tests.jobs:touch",
        queue=Q,
        enqueued_at=time.time(),
        args=[str(marker)],
        serializer="pickle",
        pickled=_pickled_call(marker),
    )
    raw_messages = [
        b"\x00\xff garbage {{{",
        b'{"hello": "not a job"}',
        _pickled_call(marker),  # raw pickle bytes
    ]
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with Queue(Q) as queue, running_worker(Q, concurrency=1) as worker:
            async with dead_letter_subscription(nats_url, Q) as sub:
                for data in raw_messages:
                    await js.publish(subject, data)
                await js.publish(subject, envelope_encoder.encode(envelope))
                letters = [await next_dead_letter(sub) for _ in range(4)]
            # The refused job has a failed outcome its producer can see (its dead letter
            # goes out before its result is stored).
            assert (await naq.wait_for_job(pickled_id, timeout=10)).status == naq.JobStatus.FAILED
            with pytest.raises(naq.JobExecutionError, match="pickle"):
                await naq.fetch_job_result(pickled_id)
            # The worker keeps going.
            ok = await queue.enqueue(jobs.add, 2, 2)
            assert await ok.result(timeout=10) == 4
            assert worker.failed == 4
    finally:
        await nc.close()
    assert not marker.exists(), "a refused payload was unpickled or executed"
    by_payload = {letter.payload: letter for letter in letters}
    for data in raw_messages:
        letter = by_payload[data]
        assert letter.job_id is None
        assert letter.queue == Q
        assert "malformed" in letter.reason
    refused = by_payload[envelope_encoder.encode(envelope)]
    assert refused.job_id == pickled_id
    assert "pickle" in refused.reason and "refused" in refused.reason
    stored = await read_dead_letters(nats_url, Q)
    assert len(stored) == 4


async def test_module_outside_allowed_modules_is_refused_before_import(
    nats_url: str, tmp_path: Path
) -> None:
    module = "tests.not_allowed_mod"
    assert module not in sys.modules
    marker = tmp_path / "ran"
    async with Queue(Q) as queue, running_worker(Q, allowed_modules=["tests.jobs"]):
        refused = await queue.enqueue(f"{module}:touch", str(marker))
        with pytest.raises(naq.JobExecutionError) as caught:
            await refused.result(timeout=10)
        allowed = await queue.enqueue(jobs.add, 1, 2)
        assert await allowed.result(timeout=10) == 3
    assert module in (caught.value.error or "")
    assert "allowed_modules" in (caught.value.error or "")
    assert module not in sys.modules
    assert not marker.exists()
    letters = await read_dead_letters(nats_url, Q)
    assert [letter.job_id for letter in letters] == [refused.job_id]
    assert "refused" in letters[0].reason


async def test_allowed_modules_prefix_is_not_a_string_prefix() -> None:
    # "tests.job" must not allow "tests.jobs": prefixes match whole module names.
    async with Queue(Q) as queue, running_worker(Q, allowed_modules=["tests.job"]):
        job = await queue.enqueue(jobs.add, 1, 2)
        with pytest.raises(naq.JobExecutionError, match="allowed_modules"):
            await job.result(timeout=10)


# -- liveness and modes ------------------------------------------------------------------


async def test_list_workers_shows_a_live_worker_with_its_queues() -> None:
    name = "lw-" + uuid.uuid4().hex[:6]
    async with (
        Queue("lw-b") as queue,
        running_worker(
            ["lw-a", "lw-b"], worker_name=name, concurrency=3, heartbeat_interval=0.2, worker_ttl=5
        ),
    ):

        async def listed() -> naq.WorkerInfo | None:
            return next((w for w in await naq.list_workers() if w.name == name), None)

        info = await wait_until(listed)
        assert info.queues == ["lw-a", "lw-b"]
        assert info.pid == os.getpid()
        assert info.concurrency == 3
        assert info.status in (naq.WorkerStatus.IDLE, naq.WorkerStatus.BUSY)
        assert info.heartbeat_age < 5

        job = await queue.enqueue(jobs.sleep, 1.0)

        async def busy() -> naq.WorkerInfo | None:
            found = await listed()
            return found if found and job.job_id in found.running else None

        info = await wait_until(busy, timeout=5)
        assert info.status == naq.WorkerStatus.BUSY
        await job.result(timeout=10)
    # A worker that stopped is gone from the list at once.
    assert name not in [w.name for w in await naq.list_workers()]


async def test_burst_mode_exits_when_the_queue_is_empty() -> None:
    queue = Queue("burst")
    batch = await queue.enqueue_many([(jobs.add, (i, i), {}) for i in range(5)])
    worker = naq.Worker("burst", burst=True, install_signal_handlers=False, shutdown_grace=2)
    await asyncio.wait_for(worker.run(), 15)
    assert worker.processed == 5
    assert [await naq.fetch_job_result(job.job_id) for job in batch] == [0, 2, 4, 6, 8]
    # On an empty queue it exits promptly too.
    start = time.monotonic()
    empty = naq.Worker("burst", burst=True, install_signal_handlers=False)
    await asyncio.wait_for(empty.run(), 10)
    assert empty.processed == 0
    assert time.monotonic() - start < 3


def test_request_stop_from_another_thread_is_prompt() -> None:
    # Worker(...).run_sync() in a background thread, stopped from the main thread. A stop that
    # is not handed to the worker's loop thread-safely is only noticed at the loop's next
    # timer, up to a second later; four tries rule out a lucky wake-up.
    latencies = []
    for _ in range(4):
        worker = naq.Worker(Q, install_signal_handlers=False, shutdown_grace=1)
        thread = threading.Thread(target=worker.run_sync, daemon=True)
        thread.start()
        job = naq.enqueue_sync(jobs.add, 1, 1, queue_name=Q)
        assert job.result_sync(timeout=10) == 2  # the worker is up and waiting for work
        started = time.monotonic()
        worker.request_stop()
        thread.join(15)
        assert not thread.is_alive()
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 0.25, latencies
