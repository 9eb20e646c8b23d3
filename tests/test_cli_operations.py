"""The CLI's operations commands, run as ``python -m naq`` subprocesses against a real nats-server:
``queues``, ``queue pause|resume``, ``jobs``, ``job show|cancel``, ``failed list|requeue|delete``,
``list-workers`` and ``worker-stop``; ``--json`` output parsed and checked against the library,
and one clear line with a non-zero exit for every refusal.

Jobs are made with the library and a worker runs in this process; the commands of one test run
side by side where they don't depend on each other, to keep the interpreter start-ups short.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

import naq
from naq import JobStatus, Queue
from tests import jobs
from tests.helpers import cli_all, naq_cli, running_worker, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")

REPO_ROOT = Path(__file__).resolve().parent.parent
Q = "cli-ops"


async def test_json_listings_show_queues_jobs_failures_and_workers() -> None:
    name = "cli-worker-" + uuid.uuid4().hex[:6]
    async with (
        Queue(Q) as queue,
        running_worker(Q, worker_name=name, concurrency=3, heartbeat_interval=0.2),
    ):
        ok = await queue.enqueue(jobs.add, 20, 22, meta={"who": "cli"})
        bad = await queue.enqueue(jobs.fail, "cli boom")
        assert await ok.result(timeout=10) == 42
        await bad.wait(timeout=10)
        queues, history, failed, workers, shown, shown_bad, missing = await cli_all(
            ("queues", "--json"),
            ("jobs", "--json"),
            ("failed", "list", "--json"),
            ("list-workers", "--json"),
            ("job", "show", ok.job_id, "--json"),
            ("job", "show", bad.job_id, "--json"),
            ("job", "show", "no-such-job-1", "--json"),
        )

    stats = {item["name"]: item for item in queues.json()}
    assert set(stats) == {Q}
    assert stats[Q]["pending"] == 0 and stats[Q]["failed"] == 1 and stats[Q]["completed"] == 1
    assert stats[Q]["paused"] is False

    listed = history.json()
    assert {item["job_id"]: item["status"] for item in listed} == {
        ok.job_id: JobStatus.COMPLETED,
        bad.job_id: JobStatus.FAILED,
    }
    assert listed[0]["job_id"] == bad.job_id  # newest first
    assert all(item["duration"] is not None and item["queue"] == Q for item in listed)

    letters = failed.json()
    assert [item["job_id"] for item in letters] == [bad.job_id]
    assert "cli boom" in letters[0]["error"] and letters[0]["queue"] == Q
    assert letters[0]["function"] == "tests.jobs:fail"

    by_name = {item["name"]: item for item in workers.json()}
    assert by_name[name]["queues"] == [Q]
    assert by_name[name]["concurrency"] == 3
    assert by_name[name]["status"] in (naq.WorkerStatus.IDLE, naq.WorkerStatus.BUSY)
    assert by_name[name]["pid"] == os.getpid()

    job = shown.json()
    assert job["job_id"] == ok.job_id and job["status"] == JobStatus.COMPLETED
    assert job["result"] == 42 and job["args"] == [20, 22] and job["meta"] == {"who": "cli"}
    assert job["function"] == "tests.jobs:add" and job["worker"] == name
    failed_job = shown_bad.json()
    assert failed_job["status"] == JobStatus.FAILED and "cli boom" in failed_job["error"]
    assert "Traceback" in (failed_job["traceback"] or "")  # the job's own, inside the JSON
    missing.assert_one_line_error("no-such-job-1")


async def test_queue_pause_shows_in_queues_and_job_cancel(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with Queue(Q) as queue, running_worker(Q, concurrency=1):
        paused = await naq_cli("queue", "pause", Q)
        paused.assert_ok(Q, "paused")
        job = await queue.enqueue(jobs.record_run, str(log), "cancelled")
        stats, cancelled = await cli_all(("queues", "--json"), ("job", "cancel", job.job_id))
        assert [(s["name"], s["paused"], s["pending"]) for s in stats.json()] == [(Q, True, 1)]
        cancelled.assert_ok(job.job_id, "cancelled")
        assert (await naq.get_job(job.job_id)).status == JobStatus.CANCELLED
        again, unknown, resumed = await cli_all(
            ("job", "cancel", job.job_id),
            ("job", "cancel", "no-such-job-2"),
            ("queue", "resume", Q),
        )
        again.assert_one_line_error(job.job_id, "ended")
        unknown.assert_one_line_error("no-such-job-2")
        resumed.assert_ok(Q, "resumed")
        after = await queue.enqueue(jobs.record_run, str(log), "after")
        assert await after.result(timeout=10) == "after"
        assert (await queue.stats()).paused is False
    assert log.read_text().split()[0] == "after"  # the cancelled job never ran
    assert len(log.read_text().splitlines()) == 1


async def test_failed_requeue_and_delete_all(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    async with Queue(Q) as queue, running_worker(Q):
        flaky = await queue.enqueue(jobs.flaky, str(counter), 1)
        doomed = [await queue.enqueue(jobs.fail, f"doomed {i}") for i in range(2)]
        for job in [flaky, *doomed]:
            assert (await job.wait(timeout=10)).status == JobStatus.FAILED
        requeued, unknown = await cli_all(
            ("failed", "requeue", flaky.job_id), ("failed", "requeue", "no-such-job-3")
        )
        requeued.assert_ok(flaky.job_id)
        unknown.assert_one_line_error("no-such-job-3")
        assert await flaky.result(timeout=10) == 2
        assert {f.job_id for f in await naq.list_failed_jobs()} == {j.job_id for j in doomed}
    deleted = await naq_cli("failed", "delete", "--all")
    deleted.assert_ok("Deleted 2")
    assert await naq.list_failed_jobs() == []
    (await naq_cli("failed", "delete", doomed[0].job_id)).assert_one_line_error(doomed[0].job_id)


async def test_worker_stop() -> None:
    name = "stoppable-" + uuid.uuid4().hex[:6]
    worker = naq.Worker(Q, worker_name=name, install_signal_handlers=False, shutdown_grace=2)
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: task.done() or worker.status != naq.WorkerStatus.STARTING)
        unknown, stopped = await cli_all(("worker-stop", "nobody-here"), ("worker-stop", name))
        stopped.assert_ok(name)
        await asyncio.wait_for(task, 10)  # the worker's run() returned
    finally:
        if not task.done():
            worker.request_stop()
            await asyncio.wait_for(task, 10)
    unknown.assert_one_line_error("nobody-here")
    assert name not in [w.name for w in await naq.list_workers()]
