"""A job's life through the store: crash points of dependency release, delayed jobs with
dependencies, purged jobs. Each test stops a transition where a SIGKILL could stop it and
checks what the next party does with that state."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import naq
from naq.broker import Broker
from naq.models import JobStatus, ResultRecord, decode_envelope, status_of
from naq.results import encode_result
from naq.settings import get_settings
from naq.store import JobStore, Parking
from tests import jobs
from tests.helpers import running_worker, start_process, stop_processes, wait_until
from tests.test_scheduling import running_scheduler

Q = "life"


async def take_and_store(store: JobStore, queue: str, value: object) -> None:
    """Act as a worker that takes the next job of ``queue``, stores its outcome, and is
    killed right there: nothing after the result (no release of dependents, no ack)."""
    broker = store.broker
    consumer = await broker.ensure_consumer(queue)
    sub = await broker.connection.js.pull_subscribe_bind(consumer, stream=broker.names.jobs_stream)
    try:
        (msg,) = await sub.fetch(1, timeout=5)
    finally:
        await sub.unsubscribe()
    envelope = decode_envelope(msg.data)
    now = time.time()
    payload = encode_result(
        store.settings,
        ResultRecord(
            job_id=envelope.id,
            status=JobStatus.COMPLETED,
            finished_at=now,
            result=value,
            attempt=1,
            started_at=now,
        ),
    )
    record = status_of(envelope, JobStatus.COMPLETED, updated_at=now, attempt=1, ended_at=now)
    assert await store.store_outcome(payload, record, None)


async def parent_and_child(monkeypatch: pytest.MonkeyPatch, log: Path) -> tuple[naq.Job, naq.Job]:
    """A parent job and a child parked on it; jobs come back 1 s after their worker dies."""
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    queue = naq.Queue(Q)
    parent = await queue.enqueue(jobs.add, 1, 2)
    child = await queue.enqueue(jobs.record_run, str(log), "child", depends_on=parent)
    return parent, child


async def parent_stored_by_a_dead_worker(
    monkeypatch: pytest.MonkeyPatch, log: Path
) -> tuple[naq.Job, naq.Job, JobStore]:
    """A parent and its parked child, the parent's result stored by a worker killed right
    after (nothing released, nothing acked); and the store."""
    parent, child = await parent_and_child(monkeypatch, log)
    store = JobStore(await Broker.connect(get_settings()))
    await take_and_store(store, Q, 3)
    return parent, child, store


def runs(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


async def test_a_parent_whose_worker_died_after_storing_its_result_releases_its_dependent(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    parent, child, store = await parent_stored_by_a_dead_worker(monkeypatch, log)
    # Delivered again after the ack wait: the worker finds the result and must release.
    async with running_worker(Q):
        assert await child.result(timeout=20) == "child"
    assert await parent.result(timeout=1) == 3
    assert runs(log) == ["child"]
    assert await store.parking.parked(child.job_id) is None
    assert await store.parking.dependents_of(parent.job_id) == {}


async def test_a_release_published_but_never_claimed_runs_the_dependent_once(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    parent, child, store = await parent_stored_by_a_dead_worker(monkeypatch, log)
    found = await store.parking.parked(child.job_id)
    assert found is not None
    # Killed between the publish of the released job and the removal of its record.
    await store.parking.release(found[0])
    async with running_worker(Q):
        assert await child.result(timeout=20) == "child"

        # The parent's redelivery settles the child again (it already ran: nothing is
        # published) and removes its record.
        async def settled() -> bool:
            return await store.parking.parked(child.job_id) is None

        await wait_until(settled, timeout=15)
    assert (await naq.get_job(child.job_id)).status == JobStatus.COMPLETED
    assert runs(log) == ["child"]


async def test_a_settle_that_fails_leaves_the_parent_unacked_to_settle_again(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, tmp_path: Path
) -> None:
    """A release whose publish fails must not be lost with the parent's ack."""
    log = tmp_path / "runs.log"
    parent, child = await parent_and_child(monkeypatch, log)
    original = Parking.release
    calls = 0

    async def flaky_release(self: Parking, waiting: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise naq.NaqException("publish refused")
        await original(self, waiting)  # type: ignore[arg-type]

    monkeypatch.setattr(Parking, "release", flaky_release)
    async with running_worker(Q):
        assert await child.result(timeout=20) == "child"
    assert calls >= 2
    assert runs(log) == ["child"]


async def test_a_delayed_job_waits_for_its_dependencies(nats_url: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    queue = naq.Queue(Q)
    parent = await queue.enqueue(jobs.record_run, str(log), "parent", 1.5)
    delayed = await queue.enqueue_in(0.1, jobs.record_run, str(log), "delayed", depends_on=parent)
    async with running_scheduler(poll_interval=0.1), running_worker(Q):
        assert await delayed.result(timeout=20) == "delayed"
    parent_info = await naq.get_job(parent.job_id)
    delayed_info = await naq.get_job(delayed.job_id)
    assert runs(log) == ["parent", "delayed"]
    assert parent_info.ended_at is not None and delayed_info.started_at is not None
    assert delayed_info.started_at >= parent_info.ended_at


async def test_a_delayed_job_whose_dependency_failed_fails(nats_url: str) -> None:
    queue = naq.Queue(Q)
    parent = await queue.enqueue(jobs.fail, "no")
    delayed = await queue.enqueue_at(time.time() + 0.2, jobs.add, 1, 2, depends_on=[parent])
    async with running_scheduler(poll_interval=0.1), running_worker(Q):
        info = await naq.wait_for_job(delayed.job_id, 20)
    assert info.status == JobStatus.FAILED
    assert info.error is not None and parent.job_id in info.error


async def test_delayed_dependencies_are_checked_and_schedules_refuse_them(nats_url: str) -> None:
    queue = naq.Queue(Q)
    with pytest.raises(naq.ConfigurationError, match="no-such-job"):
        await queue.enqueue_in(5, jobs.add, 1, 2, depends_on="no-such-job")
    parent = await queue.enqueue(jobs.add, 1, 2)
    with pytest.raises(naq.ConfigurationError, match="depends_on"):
        await queue.schedule(jobs.add, 1, 2, interval=10, depends_on=parent)


async def test_purged_jobs_end_cancelled_and_their_dependents_fail(nats_url: str) -> None:
    queue = naq.Queue(Q)
    purged = [await queue.enqueue(jobs.add, i, i) for i in range(3)]
    child = await queue.enqueue(jobs.add, 0, 0, depends_on=purged[0])
    assert await queue.purge() == 3
    for job in purged:
        info = await naq.get_job(job.job_id)
        assert info.status == JobStatus.CANCELLED
        assert info.error is not None and "purged" in info.error
        with pytest.raises(naq.NaqException):
            await job.result(timeout=2)
    pending = {info.job_id for info in await naq.list_jobs(queue=Q, status="pending")}
    assert not pending & {job.job_id for job in purged}
    child_info = await naq.wait_for_job(child.job_id, 10)
    assert child_info.status == JobStatus.FAILED
    assert await queue.purge() == 0


async def test_queue_counts_count_each_job_once_through_retries_and_redelivery(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    queue = naq.Queue(Q)
    flaky = await queue.enqueue(jobs.flaky, str(tmp_path / "count"), 2, max_retries=3)
    plain = [await queue.enqueue(jobs.add, i, 1) for i in range(3)]
    failing = await queue.enqueue(jobs.fail, "for good", max_retries=1)
    redelivered = await queue.enqueue(jobs.add, 5, 5)
    # One job's worker dies after storing its outcome: delivered again, it ends once.
    store = JobStore(await Broker.connect(get_settings()))
    await take_and_store(store, Q, 10)
    async with running_worker(Q):
        for job in [flaky, *plain, failing, redelivered]:
            await naq.wait_for_job(job.job_id, 20)

        async def redelivery_acked() -> bool:
            return (await queue.stats()).running == 0 and (await queue.stats()).pending == 0

        await wait_until(redelivery_acked, timeout=15)
    stats = await queue.stats()
    assert (stats.completed, stats.failed) == (5, 1)
    (row,) = [s for s in await naq.all_queue_stats() if s.name == Q]
    assert (row.completed, row.failed) == (5, 1)
    # Requeued, the failed job no longer counts as failed; failing again, it does, once.
    assert await naq.requeue_failed_job(failing.job_id)
    async with running_worker(Q):
        await wait_until(lambda: _failed_again(failing.job_id), timeout=20)
    stats = await queue.stats()
    assert (stats.completed, stats.failed) == (5, 1)


async def _failed_again(job_id: str) -> bool:
    info = await naq.get_job(job_id)
    return (
        info.status == JobStatus.FAILED
        and info.attempt >= 1
        and bool(await naq.list_failed_jobs(Q))
    )


async def test_list_jobs_reads_the_newest_page_without_scanning_the_history(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, tmp_path: Path
) -> None:
    queue = naq.Queue(Q)
    other = naq.Queue("elsewhere")
    done = [await queue.enqueue(jobs.add, i, 0) for i in range(6)]
    broken = await queue.enqueue(jobs.fail, "x")
    there = await other.enqueue(jobs.add, 1, 1)
    async with running_worker([Q, "elsewhere"], concurrency=1):
        for job in [*done, broken, there]:
            await naq.wait_for_job(job.job_id, 20)

    async def no_scan(*_: object, **__: object) -> None:
        raise AssertionError("list_jobs read the whole status bucket")

    monkeypatch.setattr(Broker, "read_bucket", no_scan)
    ended = [info.job_id for info in await naq.list_jobs(limit=50)]
    assert set(ended) == {j.job_id for j in [*done, broken, there]}
    finish = {i: (await naq.get_job(i)).ended_at for i in ended}
    assert ended == sorted(ended, key=lambda i: finish[i] or 0, reverse=True)
    assert [i.job_id for i in await naq.list_jobs(limit=2, offset=1)] == ended[1:3]
    assert [i.job_id for i in await naq.list_jobs(status="failed")] == [broken.job_id]
    assert {i.job_id for i in await naq.list_jobs(queue="elsewhere")} == {there.job_id}
    completed_here = await naq.list_jobs(queue=Q, status="completed", limit=4)
    done_ids = {j.job_id for j in done}
    assert [i.job_id for i in completed_here] == [i for i in ended if i in done_ids][:4]
    # Jobs in another state come from the status history's tail, newest first.
    waiting = [await queue.enqueue(jobs.add, 0, i) for i in range(2)]

    async def listed_pending() -> list[str]:
        return [i.job_id for i in await naq.list_jobs(queue=Q, status="pending")]

    await wait_until(lambda: _has_all(listed_pending(), len(waiting)))
    assert await listed_pending() == [waiting[1].job_id, waiting[0].job_id]
    everywhere = [i.job_id for i in await naq.list_jobs(status="pending", limit=1)]
    assert everywhere == [waiting[1].job_id]
    assert await naq.list_jobs(queue="elsewhere", status="running") == []


async def _has_all(listing: Any, count: int) -> bool:
    return len(await listing) >= count


async def test_a_task_enqueued_by_name_gets_its_registered_defaults(
    nats_url: str, tmp_path: Path
) -> None:
    import sys

    assert "tests.named_tasks" not in sys.modules, "the producer must not know the task"
    queue = naq.Queue(Q)
    defaulted = await queue.enqueue("tests.flaky_by_name", str(tmp_path / "a"))
    overridden = await queue.enqueue("tests.flaky_by_name", str(tmp_path / "b"), max_retries=0)
    worker = start_process(tmp_path, "worker", "worker", Q, "--module", "tests.named_tasks")
    try:
        # The registered max_retries=2 applies: two failures, then the third attempt's value.
        assert await defaulted.result(timeout=30) == 3
        info = await naq.wait_for_job(overridden.job_id, 30)
    finally:
        stop_processes([worker])
    assert info.status == JobStatus.FAILED  # the producer's own max_retries=0 stands
    assert (await naq.get_job(defaulted.job_id)).attempt == 3


async def test_a_job_is_found_as_soon_as_enqueue_returns(nats_url: str) -> None:
    queue = naq.Queue(Q)
    for i in range(300):
        job = await queue.enqueue(jobs.add, i, i)
        assert (await naq.get_job(job.job_id)).status == JobStatus.PENDING
    batch = await queue.enqueue_many([(jobs.add, (i, i), {}) for i in range(500)])
    infos = [await naq.get_job(job.job_id) for job in batch]
    assert {info.status for info in infos} == {JobStatus.PENDING}
