"""Operating naq against a real nats-server: job dependencies, cancellation, dead letters
(requeue, delete), queue pause/resume and stats, workers (listing, TTL expiry, remote stop),
history and live status changes, and progress reported by running jobs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

import naq
from naq import JobStatus, Queue
from naq.models import DeadLetter, record_encoder
from tests import jobs
from tests.helpers import StatusWatch, prefix, running_worker, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")

REPO = Path(__file__).resolve().parent.parent
Q = "ops"


def runs(log: Path) -> list[str]:
    """Tags written by ``jobs.record_run`` (empty if nothing ran)."""
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


# -- dependencies ---------------------------------------------------------------------------


async def test_dependent_starts_promptly_after_its_dependency() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=4):
        first = await queue.enqueue(jobs.async_sleep, 0.3)
        dependent = await queue.enqueue(jobs.async_sleep, 0, depends_on=first)
        parked = await naq.get_job(dependent.job_id)
        first_span = await first.result(timeout=10)
        dependent_span = await dependent.result(timeout=10)
    assert parked.status == JobStatus.PENDING
    assert parked.depends_on == [first.job_id]
    gap = dependent_span[0] - first_span[1]
    assert 0 <= gap < 0.2, f"dependent started {gap:.3f}s after its dependency ended"


async def test_dependent_waits_for_both_dependencies() -> None:
    async with Queue(Q) as queue, running_worker(Q, concurrency=4):
        slow = await queue.enqueue(jobs.async_sleep, 0.6)
        quick = await queue.enqueue(jobs.async_sleep, 0.2)
        dependent = await queue.enqueue(jobs.async_sleep, 0, depends_on=[slow, quick.job_id])
        slow_span, quick_span, dependent_span = await asyncio.gather(
            slow.result(timeout=10), quick.result(timeout=10), dependent.result(timeout=10)
        )
    assert quick_span[1] < slow_span[1]
    # Not released by the first dependency to finish: only once both have.
    assert dependent_span[0] >= slow_span[1]
    assert dependent_span[0] - slow_span[1] < 0.2


async def test_failed_dependency_fails_dependents_which_never_run(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with Queue(Q) as queue, running_worker(Q):
        bad = await queue.enqueue(jobs.fail, "dependency broke")
        child = await queue.enqueue(jobs.record_run, str(log), "child", depends_on=bad)
        grandchild = await queue.enqueue(jobs.record_run, str(log), "grandchild", depends_on=child)
        with pytest.raises(naq.JobExecutionError, match="dependency broke"):
            await bad.result(timeout=10)
        with pytest.raises(naq.JobExecutionError) as child_error:
            await child.result(timeout=10)
        with pytest.raises(naq.JobExecutionError) as grandchild_error:
            await grandchild.result(timeout=10)
        # A dependency that already failed refuses a new dependent at once.
        late = await queue.enqueue(jobs.record_run, str(log), "late", depends_on=bad)
        with pytest.raises(naq.JobExecutionError) as late_error:
            await late.result(timeout=5)
        child_info = await naq.get_job(child.job_id)
    assert bad.job_id in (child_error.value.error or "")
    assert "failed" in (child_error.value.error or "")
    assert child.job_id in (grandchild_error.value.error or "")
    assert bad.job_id in (late_error.value.error or "")
    assert child_info.status == JobStatus.FAILED
    assert child_info.error_type == "DependencyFailed"
    assert runs(log) == []


async def test_cancelled_dependency_fails_dependent(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with Queue(Q) as queue:
        first = await queue.enqueue(jobs.add, 1, 1)  # no worker yet: stays pending
        dependent = await queue.enqueue(jobs.record_run, str(log), "dependent", depends_on=first)
        assert await naq.cancel_job(first.job_id) is True
        with pytest.raises(naq.JobExecutionError) as caught:
            await dependent.result(timeout=5)
        assert (await naq.get_job(dependent.job_id)).status == JobStatus.FAILED
        async with running_worker(Q, concurrency=1):
            probe = await queue.enqueue(jobs.record_run, str(log), "probe")
            assert await probe.result(timeout=10) == "probe"
    error = caught.value.error or ""
    assert first.job_id in error and "cancelled" in error
    assert runs(log) == ["probe"]
    assert (await naq.get_job(first.job_id)).status == JobStatus.CANCELLED


async def test_unknown_dependency_is_refused_at_enqueue() -> None:
    async with Queue(Q) as queue:
        with pytest.raises(naq.ConfigurationError, match="no-such-job-42"):
            await queue.enqueue(jobs.add, 1, 2, depends_on="no-such-job-42")
        known = await queue.enqueue(jobs.add, 1, 1)
        # In a batch, one unknown dependency refuses the whole batch.
        with pytest.raises(naq.ConfigurationError, match="missing-dep-7"):
            await queue.enqueue_many(
                [
                    (jobs.add, (1, 2), {}),
                    (jobs.add, (3, 4), {}, {"depends_on": [known.job_id, "missing-dep-7"]}),
                ]
            )
        stats = await queue.stats()
        pending = await naq.list_jobs(status=JobStatus.PENDING)
    assert stats.pending == 1
    assert [info.job_id for info in pending] == [known.job_id]


# -- cancellation -------------------------------------------------------------------------


async def test_cancel_pending_job_never_runs(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with Queue(Q) as queue, running_worker(Q, concurrency=1):
        await queue.pause()
        job = await queue.enqueue(jobs.record_run, str(log), "cancelled")
        assert (await naq.get_job(job.job_id)).status == JobStatus.PENDING
        assert await naq.cancel_job(job.job_id) is True
        assert (await naq.get_job(job.job_id)).status == JobStatus.CANCELLED
        with pytest.raises(naq.JobExecutionError, match="cancelled"):
            await job.result(timeout=5)
        after = await queue.enqueue(jobs.record_run, str(log), "after")
        await queue.resume()
        # One slot, first in first out: the cancelled job was taken (and skipped) before this.
        assert await after.result(timeout=5) == "after"
        assert (await queue.stats()).pending == 0
    assert runs(log) == ["after"]
    assert (await naq.get_job(job.job_id)).status == JobStatus.CANCELLED
    assert await naq.cancel_job(job.job_id) is False


async def test_cancel_running_async_job(nats_url: str) -> None:
    async with (
        Queue(Q) as queue,
        running_worker(Q, concurrency=1),
        StatusWatch(nats_url, Q) as watch,
    ):
        job = await queue.enqueue(jobs.async_sleep, 30)
        await watch.status(job.job_id, JobStatus.RUNNING)
        cancelled_at = time.monotonic()
        assert await naq.cancel_job(job.job_id) is True
        info = await naq.wait_for_job(job.job_id, timeout=5)
        took = time.monotonic() - cancelled_at
        with pytest.raises(naq.JobExecutionError, match="cancelled"):
            await job.result(timeout=1)
        # The worker's only slot is free again: the next job runs.
        following = await queue.enqueue(jobs.async_add, 2, 3)
        assert await following.result(timeout=5) == 5
        await watch.status(job.job_id, JobStatus.CANCELLED)
    assert info.status == JobStatus.CANCELLED
    assert took < 2
    assert (await naq.get_job(job.job_id)).status == JobStatus.CANCELLED


async def test_cancel_running_sync_job_discards_its_result(nats_url: str, tmp_path: Path) -> None:
    finished = tmp_path / "finished"
    async with (
        Queue(Q) as queue,
        running_worker(Q, concurrency=1),
        StatusWatch(nats_url, Q) as watch,
    ):
        job = await queue.enqueue(jobs.slow_touch, str(finished), 1.0)
        await watch.status(job.job_id, JobStatus.RUNNING)
        assert await naq.cancel_job(job.job_id) is True
        info = await naq.wait_for_job(job.job_id, timeout=5)
        assert info.status == JobStatus.CANCELLED
        assert not finished.exists(), "the outcome should not wait for the thread"
        # The worker's one thread is still busy with the cancelled job: the next sync job runs
        # only after that thread returned, so by then its result would have been stored.
        following = await queue.enqueue(jobs.add, 1, 2)
        assert await following.result(timeout=10) == 3
        assert finished.exists()
        with pytest.raises(naq.JobExecutionError, match="cancelled"):
            await naq.fetch_job_result(job.job_id)
        assert (await naq.get_job(job.job_id)).status == JobStatus.CANCELLED
    assert [e.status for e in watch.events if e.job_id == job.job_id][-1] == JobStatus.CANCELLED


async def test_cancel_ended_or_unknown_job() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        done = await queue.enqueue(jobs.add, 1, 1)
        assert await done.result(timeout=10) == 2
        failed = await queue.enqueue(jobs.fail, "x")
        await failed.wait(timeout=10)
        assert await naq.cancel_job(done.job_id) is False
        assert await naq.cancel_job(failed.job_id) is False
    assert await naq.fetch_job_result(done.job_id) == 2
    assert (await naq.get_job(failed.job_id)).status == JobStatus.FAILED
    with pytest.raises(naq.JobNotFoundError, match="never-enqueued-1"):
        await naq.cancel_job("never-enqueued-1")


# -- dead letters ---------------------------------------------------------------------------


async def test_dead_lettered_job_requeued_completes(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.flaky, str(counter), 1, max_retries=0)
        with pytest.raises(naq.JobExecutionError, match="flaky failure 1"):
            await job.result(timeout=10)
        failed = await naq.list_failed_jobs(Q)
        assert [f.job_id for f in failed] == [job.job_id]
        assert failed[0].function == "tests.jobs:flaky"
        assert "flaky failure 1" in (failed[0].error or "")
        assert await naq.requeue_failed_job(job.job_id) is True
        assert await job.result(timeout=10) == 2
        assert await naq.list_failed_jobs(Q) == []
        info = await naq.get_job(job.job_id)
    assert info.status == JobStatus.COMPLETED
    assert counter.read_text() == "2"
    with pytest.raises(naq.JobNotFoundError):
        await naq.requeue_failed_job(job.job_id)


async def test_failed_jobs_listed_by_queue_deleted_and_requeued_in_bulk(tmp_path: Path) -> None:
    async with (
        Queue("dl-a") as qa,
        Queue("dl-b") as qb,
        running_worker(["dl-a", "dl-b"]),
    ):
        a_jobs = [await qa.enqueue(jobs.fail, f"a{i}") for i in range(3)]
        b_jobs = [await qb.enqueue(jobs.flaky, str(tmp_path / f"b{i}"), 1) for i in range(2)]
        for job in a_jobs + b_jobs:
            assert (await job.wait(timeout=10)).status == JobStatus.FAILED
        listed_a = await naq.list_failed_jobs("dl-a")
        listed_b = await naq.list_failed_jobs("dl-b")
        listed_all = await naq.list_failed_jobs()
        assert {f.job_id for f in listed_a} == {j.job_id for j in a_jobs}
        assert {f.queue for f in listed_a} == {"dl-a"}
        assert {f.job_id for f in listed_b} == {j.job_id for j in b_jobs}
        assert len(listed_all) == 5
        assert [f.seq for f in listed_all] == sorted((f.seq for f in listed_all), reverse=True)

        assert await naq.delete_failed_job(a_jobs[0].job_id) is True
        with pytest.raises(naq.JobNotFoundError, match=a_jobs[0].job_id):
            await naq.delete_failed_job(a_jobs[0].job_id)
        with pytest.raises(naq.JobNotFoundError, match=a_jobs[0].job_id):
            await naq.requeue_failed_job(a_jobs[0].job_id)
        assert {f.job_id for f in await naq.list_failed_jobs("dl-a")} == {
            j.job_id for j in a_jobs[1:]
        }

        assert await naq.requeue_failed_jobs("dl-b") == 2
        assert [await job.result(timeout=10) for job in b_jobs] == [2, 2]
        assert await naq.list_failed_jobs("dl-b") == []
        assert len(await naq.list_failed_jobs("dl-a")) == 2  # the bulk requeue kept to dl-b

        assert await naq.delete_failed_jobs("dl-a") == 2
        assert await naq.list_failed_jobs() == []


async def test_garbage_dead_letter_cannot_be_requeued_but_can_be_deleted(nats_url: str) -> None:
    # A dead letter whose payload is not a naq job (e.g. written by hand or by a buggy tool),
    # and a malformed message the worker itself dead-lettered.
    letter = DeadLetter(
        job_id="garbage-1",
        queue=Q,
        reason="hand-made",
        failed_at=time.time(),
        payload=b"\x00\xff not a job {{{",
    )
    await naq.list_failed_jobs(Q)  # makes the failed stream
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(f"{prefix()}.failed.{Q}", record_encoder.encode(letter))
        async with Queue(Q) as queue, running_worker(Q, concurrency=1):
            await js.publish(f"{prefix()}.queue.{Q}", b"\x00 garbage on the queue")
            probe = await queue.enqueue(jobs.add, 1, 1)  # taken after the garbage
            assert await probe.result(timeout=10) == 2
    finally:
        await nc.close()
    failed = await naq.list_failed_jobs(Q)
    assert len(failed) == 2
    by_id = {f.job_id: f for f in failed}
    assert by_id[None].payload == b"\x00 garbage on the queue"
    assert "malformed" in by_id[None].reason
    with pytest.raises(naq.ConfigurationError, match="garbage-1"):
        await naq.requeue_failed_job("garbage-1")
    assert await naq.requeue_failed_jobs(Q) == 0
    assert len(await naq.list_failed_jobs(Q)) == 2  # nothing lost by the refusals
    assert await naq.delete_failed_job("garbage-1") is True
    assert await naq.delete_failed_jobs(Q) == 1
    assert await naq.list_failed_jobs(Q) == []


# -- pause, resume, stats -----------------------------------------------------------------


async def test_paused_queue_holds_jobs_until_resumed() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        warm = await queue.enqueue(jobs.add, 0, 1)
        assert await warm.result(timeout=10) == 1  # the worker takes jobs
        await queue.pause()
        job = await queue.enqueue(jobs.add, 2, 3)
        with pytest.raises(naq.JobTimeoutError):
            await job.result(timeout=3)
        stats = await queue.stats()
        assert (stats.paused, stats.pending, stats.running) == (True, 1, 0)
        assert (await naq.get_job(job.job_id)).status == JobStatus.PENDING
        await queue.resume()
        assert await job.result(timeout=2) == 5
        assert (await queue.stats()).paused is False


async def test_pause_survives_a_worker_restart() -> None:
    async with Queue(Q) as queue:
        async with running_worker(Q):
            await queue.pause()
        async with running_worker(Q):
            job = await queue.enqueue(jobs.add, 4, 4)
            with pytest.raises(naq.JobTimeoutError):
                await job.result(timeout=1.5)
            assert (await queue.stats()).paused is True
            await queue.resume()
            assert await job.result(timeout=2) == 8


async def test_queue_stats_and_all_queue_stats() -> None:
    async with Queue("stats-q") as queue, Queue("stats-other") as other:
        await queue.enqueue_many([(jobs.add, (i, i), {}) for i in range(5)])
        await queue.enqueue_in(3600, jobs.add, 1, 1)
        await other.enqueue(jobs.add, 0, 0)
        stats = await queue.stats()
        assert (stats.name, stats.pending, stats.running, stats.scheduled) == ("stats-q", 5, 0, 1)
        assert (stats.completed, stats.failed, stats.paused) == (0, 0, False)
        await queue.pause()
        assert (await queue.stats()).paused is True
        by_name = {s.name: s for s in await naq.all_queue_stats()}
        assert set(by_name) == {"stats-q", "stats-other"}
        assert (by_name["stats-q"].pending, by_name["stats-q"].paused) == (5, True)
        assert (by_name["stats-other"].pending, by_name["stats-other"].paused) == (1, False)
        await queue.resume()
        assert (await queue.stats()).paused is False


# -- workers --------------------------------------------------------------------------------


async def test_list_workers_shows_running_jobs_and_counts(tmp_path: Path) -> None:
    name = "lw-" + uuid.uuid4().hex[:6]
    release = tmp_path / "release"

    async def me() -> naq.WorkerInfo | None:
        return next((w for w in await naq.list_workers() if w.name == name), None)

    async with (
        Queue(Q) as queue,
        running_worker(Q, worker_name=name, heartbeat_interval=0.2, worker_ttl=5),
    ):
        busy_job = await queue.enqueue(jobs.async_progress, str(release))

        async def busy() -> naq.WorkerInfo | None:
            info = await me()
            return info if info and busy_job.job_id in info.running else None

        info = await wait_until(busy, timeout=5)
        assert info.status == naq.WorkerStatus.BUSY
        assert info.queues == [Q]
        release.write_text("go")
        await busy_job.result(timeout=10)
        ok = await queue.enqueue(jobs.add, 1, 1)
        bad = await queue.enqueue(jobs.fail, "counted")
        await ok.result(timeout=10)
        await bad.wait(timeout=10)

        async def counted() -> naq.WorkerInfo | None:
            info = await me()
            return info if info and (info.processed, info.failed) == (2, 1) else None

        info = await wait_until(counted, timeout=5)
        assert info.running == []
        assert info.status == naq.WorkerStatus.IDLE
        assert info.heartbeat_age < 1


async def test_worker_with_fewer_slots_than_queues_serves_every_queue() -> None:
    # One slot, two queues: the second queue must get its turn even while the first is idle.
    async with (
        Queue("slots-a") as qa,
        Queue("slots-b") as qb,
        running_worker(["slots-a", "slots-b"], concurrency=1),
    ):
        a_job = await qa.enqueue(jobs.add, 1, 1)
        b_job = await qb.enqueue(jobs.add, 2, 2)
        assert await a_job.result(timeout=5) == 2
        # At worst b's job waits for the watch on a to expire (feeding.PULL_WAIT, 10 s).
        assert await b_job.result(timeout=15) == 4


async def test_killed_worker_disappears_after_its_ttl(tmp_path: Path, nats_url: str) -> None:
    name = "doomed-" + uuid.uuid4().hex[:6]
    env = dict(
        os.environ,
        NAQ_WORKER_TTL="1",
        NAQ_WORKER_HEARTBEAT_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "naq", "worker", Q, "--name", name],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def listed() -> naq.WorkerInfo | None:
            assert proc.poll() is None, log.read_text(errors="replace")
            return next((w for w in await naq.list_workers() if w.name == name), None)

        info = await wait_until(listed, timeout=20, interval=0.1)
        assert info.pid == proc.pid
        proc.kill()
        await asyncio.to_thread(proc.wait, 10)
        killed = time.monotonic()

        async def gone() -> bool:
            return name not in [w.name for w in await naq.list_workers()]

        await wait_until(gone, timeout=5)
        assert time.monotonic() - killed < 2.5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_stop_worker_remotely_is_graceful(nats_url: str) -> None:
    name = "remote-" + uuid.uuid4().hex[:6]
    worker = naq.Worker(Q, worker_name=name, install_signal_handlers=False, shutdown_grace=5)
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: task.done() or worker.status != naq.WorkerStatus.STARTING)
        async with Queue(Q) as queue, StatusWatch(nats_url, Q) as watch:
            job = await queue.enqueue(jobs.async_sleep, 0.5)
            await watch.status(job.job_id, JobStatus.RUNNING)
            assert await naq.stop_worker(name) is True
            await asyncio.wait_for(task, 10)  # run() returns
            # Graceful: the running job was finished, not dropped.
            span = await job.result(timeout=1)
            assert span[1] - span[0] >= 0.5
    finally:
        if not task.done():
            worker.request_stop()
            await asyncio.wait_for(task, 10)
    assert name not in [w.name for w in await naq.list_workers()]
    assert await naq.stop_worker(name) is False
    assert await naq.stop_worker("nobody") is False


# -- history and live changes ---------------------------------------------------------------


async def test_list_jobs_pages_newest_first_with_filters() -> None:
    async with (
        Queue("hist-a") as qa,
        Queue("hist-b") as qb,
        running_worker(["hist-a", "hist-b"], concurrency=2),
    ):
        a_ok = [await qa.enqueue(jobs.add, i, i) for i in range(5)]
        a_bad = [await qa.enqueue(jobs.fail, f"f{i}") for i in range(2)]
        b_ok = [await qb.enqueue(jobs.add, i, 1) for i in range(3)]
        everything = a_ok + a_bad + b_ok
        infos = [await job.wait(timeout=10) for job in everything]
        await qa.pause()
        pending = await qa.enqueue(jobs.add, 9, 9)  # not ended: not history by default
    newest_first = [i.job_id for i in sorted(infos, key=lambda i: i.ended_at or 0, reverse=True)]
    first_page = await naq.list_jobs(limit=5)
    second_page = await naq.list_jobs(limit=5, offset=5)
    assert [i.job_id for i in first_page] == newest_first[:5]
    assert [i.job_id for i in second_page] == newest_first[5:]
    assert await naq.list_jobs(limit=5, offset=10) == []
    assert len(await naq.list_jobs()) == 10
    failed = await naq.list_jobs(status=JobStatus.FAILED)
    assert {i.job_id for i in failed} == {j.job_id for j in a_bad}
    assert all(i.status == JobStatus.FAILED and i.error for i in failed)
    in_b = await naq.list_jobs(queue="hist-b")
    assert [i.job_id for i in in_b] == [j for j in newest_first if j in {x.job_id for x in b_ok}]
    a_completed = await naq.list_jobs(queue="hist-a", status=JobStatus.COMPLETED)
    assert {i.job_id for i in a_completed} == {j.job_id for j in a_ok}
    assert [i.job_id for i in await naq.list_jobs(status=JobStatus.PENDING)] == [pending.job_id]
    with pytest.raises(naq.ConfigurationError, match="bogus"):
        await naq.list_jobs(status="bogus")


async def test_watch_jobs_sees_running_then_completed(nats_url: str) -> None:
    async with (
        Queue("watched") as queue,
        Queue("unwatched") as other,
        running_worker(["watched", "unwatched"]),
        StatusWatch(nats_url, "watched") as watch,
    ):
        noise = await other.enqueue(jobs.add, 0, 0)
        assert await noise.result(timeout=10) == 0
        job = await queue.enqueue(jobs.async_sleep, 0.3)
        done = await watch.status(job.job_id, JobStatus.COMPLETED)
    statuses = [e.status for e in watch.events if e.job_id == job.job_id]
    assert statuses == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED]
    # The other queue's changes came first in the bucket, and were filtered out.
    assert {e.queue for e in watch.events} == {"watched"}
    assert done.function == "tests.jobs:async_sleep"
    assert done.attempt == 1
    assert done.worker


async def test_watch_jobs_sees_every_change_of_fast_jobs(nats_url: str) -> None:
    # "Yields every job status change": also the brief running state of a job that takes
    # microseconds, which the next status write replaces at once.
    async with (
        Queue("fast") as queue,
        running_worker("fast", concurrency=1),
        StatusWatch(nats_url, "fast") as watch,
    ):
        batch = await queue.enqueue_many([(jobs.add, (i, i), {}) for i in range(50)])
        for job in batch:
            await watch.status(job.job_id, JobStatus.COMPLETED)
    missed = [
        job.job_id
        for job in batch
        if JobStatus.RUNNING not in [e.status for e in watch.events if e.job_id == job.job_id]
    ]
    assert missed == [], f"{len(missed)} of 50 jobs were never seen running"


# -- progress -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "progress", "message", "meta"),
    [
        (jobs.async_progress, 0.5, "half", {"step": 1}),
        (jobs.sync_progress, 0.25, "quarter", {"rows": 10}),
    ],
)
async def test_progress_is_visible_while_the_job_runs(
    nats_url: str,
    tmp_path: Path,
    func: Callable[..., Any],
    progress: float,
    message: str,
    meta: dict[str, Any],
) -> None:
    release = tmp_path / "release"
    async with (
        Queue(Q) as queue,
        running_worker(Q),
        StatusWatch(nats_url, Q) as watch,
    ):
        job = await queue.enqueue(func, str(release), meta={"owner": "tests"})
        event = await watch.until(lambda e: e.job_id == job.job_id and e.progress is not None)
        info = await naq.get_job(job.job_id)
        release.write_text("go")
        value = await job.result(timeout=10)
    assert (event.status, event.progress, event.progress_message) == (
        JobStatus.RUNNING,
        progress,
        message,
    )
    assert info.status == JobStatus.RUNNING
    assert (info.progress, info.progress_message) == (progress, message)
    assert info.meta == {"owner": "tests", **meta}
    # The job saw itself through naq.current_job().
    if isinstance(value, dict):
        assert value == {"job_id": job.job_id, "queue": Q, "attempt": 1}
    else:
        assert value == job.job_id


async def test_report_progress_outside_a_job_raises() -> None:
    assert naq.current_job() is None
    with pytest.raises(naq.NaqException, match="inside a running job"):
        await naq.report_progress(0.5, "half")
    with pytest.raises(naq.NaqException, match="inside a running job"):
        naq.report_progress_sync(0.5)
