"""One rule for ids across the API, against a real nats-server: an operation on an id naq has
no record of raises ``JobNotFoundError`` naming it (async functions, ``Queue`` methods, sync
twins), one with nothing to do returns False, and the CLI exits non-zero with one line naming
the id. A cancelled job's value raises ``JobCancelledError``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import naq
import naq.jobs as naq_jobs
from naq import JobStatus, Queue
from naq.broker import Broker
from naq.dead_letters import delete_failed_seq
from naq.models import ResultRecord
from naq.settings import get_settings
from naq.store import JobStore
from tests import jobs
from tests.helpers import cli_all, running_worker

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "not-found"
UNKNOWN = "never-enqueued-7"


def operations_on(queue: Queue) -> dict[str, Callable[[str], Awaitable[Any]]]:
    """Every async operation that takes a job, schedule or dead-letter id."""
    return {
        "get_job": naq.get_job,
        "fetch_job_result": naq.fetch_job_result,
        "Job.fetch_result": naq.Job.fetch_result,
        # A timeout, so that waiting instead of refusing fails fast.
        "wait_for_job": lambda job_id: naq.wait_for_job(job_id, timeout=5),
        "cancel_job": naq.cancel_job,
        "requeue_failed_job": naq.requeue_failed_job,
        "delete_failed_job": naq.delete_failed_job,
        "cancel_scheduled_job": naq.cancel_scheduled_job,
        "pause_scheduled_job": naq.pause_scheduled_job,
        "resume_scheduled_job": naq.resume_scheduled_job,
        "modify_scheduled_job": lambda job_id: naq.modify_scheduled_job(job_id, interval=5),
        "Queue.cancel_scheduled_job": queue.cancel_scheduled_job,
        "Queue.pause_scheduled_job": queue.pause_scheduled_job,
        "Queue.resume_scheduled_job": queue.resume_scheduled_job,
        "Queue.modify_scheduled_job": lambda job_id: queue.modify_scheduled_job(job_id, repeat=2),
    }


async def test_every_operation_on_an_unknown_id_raises_not_found_naming_it() -> None:
    async with Queue(Q) as queue:
        outcomes = {}
        for name, call in operations_on(queue).items():
            try:
                outcomes[name] = await call(UNKNOWN)
            except naq.JobNotFoundError as exc:
                outcomes[name] = "not found" if UNKNOWN in str(exc) else str(exc)
            except naq.NaqException as exc:
                outcomes[name] = repr(exc)
        assert outcomes == dict.fromkeys(outcomes, "not found")
        with pytest.raises(naq.JobNotFoundError, match="#999999"):
            await delete_failed_seq(999_999)


def test_the_sync_twins_raise_not_found_too() -> None:
    twins: list[Callable[[str], Any]] = [
        naq.get_job_sync,
        naq.fetch_job_result_sync,
        naq.Job.fetch_result_sync,
        lambda job_id: naq.wait_for_job_sync(job_id, timeout=5),
        naq.cancel_job_sync,
        naq.requeue_failed_job_sync,
        naq.delete_failed_job_sync,
        naq.cancel_scheduled_job_sync,
        naq.pause_scheduled_job_sync,
        naq.resume_scheduled_job_sync,
        lambda job_id: naq.modify_scheduled_job_sync(job_id, interval=5),
    ]
    for twin in twins:
        with pytest.raises(naq.JobNotFoundError, match=UNKNOWN):
            twin(UNKNOWN)


async def test_no_result_yet_says_whether_naq_knows_the_job() -> None:
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.add, 1, 2)  # no worker: it stays pending
        with pytest.raises(naq.JobNotFoundError, match=f"{job.job_id}.*no result yet.*pending"):
            await naq.fetch_job_result(job.job_id)
        with pytest.raises(naq.JobNotFoundError, match=f"no job '{UNKNOWN}'"):
            await naq.fetch_job_result(UNKNOWN)
        # A job naq knows is waited for, not refused.
        with pytest.raises(naq.JobTimeoutError):
            await naq.wait_for_job(job.job_id, timeout=0.3)


def first_result_read_misses(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[str], Awaitable[Any]] | None = None
) -> None:
    """The next read of a job's result finds none (it is read just before the result is
    written), and ``meanwhile(job_id)`` runs before it returns; later reads are real."""
    read_result = naq_jobs._result_record

    async def misses(broker: Broker, job_id: str) -> ResultRecord | None:
        monkeypatch.setattr(naq_jobs, "_result_record", read_result)
        if meanwhile is not None:
            await meanwhile(job_id)
        return None

    monkeypatch.setattr(naq_jobs, "_result_record", misses)


async def test_a_job_that_ends_between_the_result_and_status_reads_has_its_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.add, 1, 2)  # no worker: it stays pending
        store = JobStore(await Broker.connect(get_settings()))
        # The job's outcome (result, then status) lands just after its result is read.
        first_result_read_misses(
            monkeypatch, lambda job_id: store.end(job_id, JobStatus.CANCELLED, error="cancelled")
        )
        with pytest.raises(naq.JobCancelledError, match=job.job_id):
            await naq.fetch_job_result(job.job_id)


async def test_a_job_info_read_as_the_job_ends_has_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.add, 1, 2)
        assert (await naq.wait_for_job(job.job_id, timeout=10)).result == 3
    # Read at the same time as the status, the result is read just before it is written.
    first_result_read_misses(monkeypatch)
    info = await naq.get_job(job.job_id)
    assert (info.status, info.result) == (JobStatus.COMPLETED, 3)


async def test_a_cancelled_job_raises_job_cancelled_error() -> None:
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.add, 1, 2)  # no worker: it stays pending
        assert await naq.cancel_job(job.job_id) is True
        assert await naq.cancel_job(job.job_id) is False  # ended already: nothing to do
        with pytest.raises(naq.JobCancelledError, match=job.job_id) as caught:
            await job.result(timeout=5)
        assert isinstance(caught.value, naq.JobExecutionError)  # old handlers still catch it
        with pytest.raises(naq.JobCancelledError, match="cancelled"):
            await naq.fetch_job_result(job.job_id)
        with pytest.raises(naq.JobCancelledError):
            job.result_sync(timeout=5)
        info = await naq.wait_for_job(job.job_id, timeout=5)  # waiting does not raise
        assert info.status == JobStatus.CANCELLED


async def test_a_failed_job_is_not_reported_as_cancelled() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(jobs.fail, "plain failure")
        with pytest.raises(naq.JobExecutionError, match="plain failure") as caught:
            await job.result(timeout=10)
    assert not isinstance(caught.value, naq.JobCancelledError)


async def test_cli_commands_on_an_unknown_id_exit_with_one_line_naming_it() -> None:
    commands = [
        ("job", "show", UNKNOWN),
        ("job", "result", UNKNOWN),
        ("job", "cancel", UNKNOWN),
        ("job", "wait", UNKNOWN),  # without --timeout: waiting instead of refusing hangs
        ("failed", "requeue", UNKNOWN),
        ("failed", "delete", UNKNOWN),
        ("job-control", UNKNOWN, "pause"),
        ("job-control", UNKNOWN, "resume"),
        ("job-control", UNKNOWN, "cancel"),
        ("job-control", UNKNOWN, "reschedule", "--interval", "5"),
    ]
    for result in await cli_all(*commands):
        result.assert_one_line_error(f"'{UNKNOWN}'")
        assert "no " in result.err, result  # "no job ...", "no failed job ...", ...


async def test_cli_says_when_there_is_nothing_to_do() -> None:
    async with Queue(Q) as queue:
        paused = await queue.schedule(jobs.noop, interval=60)
        assert await queue.pause_scheduled_job(paused.job_id)
        active = await queue.schedule(jobs.noop, interval=60)
        job = await queue.enqueue(jobs.add, 1, 2)  # no worker: it stays pending
        assert await naq.cancel_job(job.job_id)
    paused_again, active_already, cancelled_again, result = await cli_all(
        ("job-control", paused.job_id, "pause"),
        ("job-control", active.job_id, "resume"),
        ("job", "cancel", job.job_id),
        ("job", "result", job.job_id),
    )
    paused_again.assert_one_line_error(paused.job_id, "paused already")
    active_already.assert_one_line_error(active.job_id, "active already")
    cancelled_again.assert_one_line_error(job.job_id, "ended")
    result.assert_one_line_error(job.job_id, "cancelled")
    assert "failed" not in result.err
    statuses = {i.job_id: i.status for i in await naq.list_scheduled_jobs()}
    assert statuses == {paused.job_id: "paused", active.job_id: "active"}
