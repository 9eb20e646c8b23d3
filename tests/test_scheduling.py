"""Scheduling against a real nats-server: delayed and recurring jobs, control of schedules.

The scheduler and the worker run in-process as tasks of the test's loop (the sync-twin test runs
them in background threads). Run ``k >= 2`` of schedule ``S`` has job id ``f"{S}_{k}"`` (run 1
keeps ``S``), so every run can be waited for by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import nats
import pytest

import naq
from naq import Queue
from tests import jobs
from tests.helpers import assert_never_runs, prefix, running_worker, thread_worker, wait_until

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "sched"


def run_id(schedule_id: str, k: int) -> str:
    """Job id of run ``k`` (1-based) of a schedule."""
    return schedule_id if k == 1 else f"{schedule_id}_{k}"


@contextlib.asynccontextmanager
async def running_scheduler(**options: object) -> AsyncIterator[naq.Scheduler]:
    """A :class:`naq.Scheduler` (HA on, as deployed) as a task of this loop; yields once leading."""
    options.setdefault("install_signal_handlers", False)
    scheduler = naq.Scheduler(**options)  # type: ignore[arg-type]
    task = asyncio.create_task(scheduler.run())
    try:
        # Nothing to await for "holds the lease": poll the scheduler's own flag.
        await wait_until(lambda: task.done() or scheduler.is_leader)
        if task.done():
            task.result()  # raise the start-up error
        yield scheduler
    finally:
        scheduler.request_stop()
        await asyncio.wait_for(task, 15)


@contextlib.contextmanager
def thread_scheduler(**options: object) -> Iterator[naq.Scheduler]:
    """A scheduler on its own event loop in a background thread (for the sync tests)."""
    options.setdefault("install_signal_handlers", False)
    scheduler = naq.Scheduler(**options)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(scheduler.run())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="test-scheduler", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not scheduler.is_leader:
        assert thread.is_alive(), f"scheduler died at start: {errors!r}"
        assert time.monotonic() < deadline, "scheduler did not take the lease"
        time.sleep(0.02)
    try:
        yield scheduler
    finally:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(scheduler.request_stop)
        thread.join(15)
        assert not thread.is_alive(), "scheduler thread did not stop"
        assert not errors, errors


async def schedule_removed(schedule_id: str, timeout: float = 5.0) -> None:
    """Wait until ``schedule_id`` is gone from the scheduled-jobs bucket, watching its key."""
    nc = await nats.connect(os.environ["NAQ_NATS_URL"])
    try:
        kv = await nc.jetstream().key_value(f"{prefix()}_scheduled_jobs")
        watcher = await kv.watch(schedule_id)
        present = False
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"schedule {schedule_id} still stored after {timeout}s"
            try:
                entry = await watcher.updates(timeout=remaining)
            except nats.errors.TimeoutError:
                continue
            if entry is None:  # caught up with the stored state
                if not present:
                    return
                continue
            present = entry.operation not in ("DEL", "PURGE")
            if not present:
                return
    finally:
        await nc.close()


async def schedule_record(schedule_id: str) -> naq.ScheduleInfo | None:
    found = await naq.list_scheduled_jobs(job_id=schedule_id)
    assert len(found) <= 1
    return found[0] if found else None


# -- one-shot jobs -----------------------------------------------------------------------------


async def test_enqueue_in_runs_after_its_delay() -> None:
    async with running_scheduler(), running_worker(Q):
        t0 = time.time()
        job = await naq.enqueue_in(timedelta(seconds=1), jobs.async_sleep, 0, queue_name=Q)
        # Until it is due it is a schedule, and its job is known as "scheduled".
        record = await schedule_record(job.job_id)
        assert record is not None and record.queue == Q and record.function.endswith("async_sleep")
        assert 1.0 <= record.next_run - t0 < 1.5
        assert (await naq.get_job(job.job_id)).status == naq.JobStatus.SCHEDULED

        start, _end = await job.result(timeout=10)
        # Never early; late by less than half a second.
        assert 1.0 <= start - t0 <= 1.5, start - t0
        # A one-shot schedule is gone once it has fired.
        await schedule_removed(job.job_id)
        assert await schedule_record(job.job_id) is None


async def test_enqueue_at_with_an_aware_datetime() -> None:
    # A zone far from UTC: the instant counts, not the wall-clock digits.
    zone = timezone(timedelta(hours=-7))
    due = datetime.now(zone) + timedelta(seconds=1)
    async with running_scheduler(), running_worker(Q):
        job = await Queue(Q).enqueue_at(due, jobs.async_sleep, 0)
        record = await schedule_record(job.job_id)
        assert record is not None
        assert record.next_run == pytest.approx(due.timestamp(), abs=1e-6)
        start, _end = await job.result(timeout=10)
        assert 0.0 <= start - due.timestamp() <= 0.5, start - due.timestamp()


async def test_enqueue_at_with_a_naive_datetime_means_utc() -> None:
    # With the local zone set far from UTC, naive-as-local would be 5.5 h off (and run at once).
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        assert time.timezone != 0
        naive_utc = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=1)
        assert naive_utc.tzinfo is None
        due = naive_utc.replace(tzinfo=timezone.utc).timestamp()
        async with running_scheduler(), running_worker(Q):
            job = await naq.enqueue_at(naive_utc, jobs.async_sleep, 0, queue_name=Q)
            record = await schedule_record(job.job_id)
            assert record is not None
            assert record.next_run == pytest.approx(due, abs=1e-6)
            start, _end = await job.result(timeout=10)
            assert 0.0 <= start - due <= 0.5, start - due
    finally:
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


# -- recurring jobs ----------------------------------------------------------------------------


async def test_interval_with_repeat_runs_exactly_that_many_times(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    async with running_scheduler(), running_worker(Q) as worker:
        t0 = time.time()
        job = await naq.schedule(jobs.record_job_id, str(log), interval=0.5, repeat=3, queue_name=Q)
        schedule_id = job.job_id
        for k in (1, 2, 3):
            info = await naq.wait_for_job(run_id(schedule_id, k), timeout=5)
            assert info.status == naq.JobStatus.COMPLETED
            assert info.result == run_id(schedule_id, k)  # the run ran as its own job
            # Run k is due k intervals after scheduling (run 1 one interval after); never sooner.
            assert info.enqueued_at is not None and info.enqueued_at >= t0 + 0.5 * k
        # A fourth run would be due 0.5 s after the third: none comes in two intervals and more.
        await assert_never_runs(run_id(schedule_id, 4), within=1.2)
        assert await schedule_record(schedule_id) is None
        assert await naq.list_scheduled_jobs(queue=Q) == []
        executed = [line.split()[0] for line in log.read_text().splitlines()]
        assert executed == [run_id(schedule_id, k) for k in (1, 2, 3)]
        assert worker.processed == 3


# -- a change of leader ------------------------------------------------------------------------


async def test_a_run_its_dead_leader_enqueued_but_never_recorded_is_recorded_not_redone(
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    nc = await nats.connect(os.environ["NAQ_NATS_URL"])
    try:
        async with running_worker(Q) as worker:
            job = await naq.enqueue_in(0.2, jobs.record_job_id, str(log), queue_name=Q)
            kv = await nc.jetstream().key_value(f"{prefix()}_scheduled_jobs")
            before_firing = await kv.get(job.job_id)
            async with running_scheduler():
                first = await naq.wait_for_job(job.job_id, timeout=5)
                await schedule_removed(job.job_id)
            # A leader that died between enqueueing the run and recording it leaves the
            # schedule as it was before firing.
            await kv.put(job.job_id, before_firing.value)
            async with running_scheduler():
                # The next leader records the run ...
                await schedule_removed(job.job_id)
            # ... and leaves the run as it was: not pending again, not run twice.
            after = await naq.get_job(job.job_id)
            assert after.status == naq.JobStatus.COMPLETED
            assert after.enqueued_at == first.enqueued_at
            assert [line.split()[0] for line in log.read_text().splitlines()] == [job.job_id]
            assert worker.processed == 1
    finally:
        await nc.close()


# -- refusals ----------------------------------------------------------------------------------


async def test_a_bad_cron_string_is_refused_naming_it() -> None:
    async with Queue(Q) as queue:
        for bad in ("61 * * * *", "every tuesday"):
            with pytest.raises(naq.ConfigurationError, match=re.escape(repr(bad))):
                await queue.schedule(jobs.noop, cron=bad)
        with pytest.raises(naq.ConfigurationError, match="Mars/Olympus"):
            await queue.schedule(jobs.noop, cron="*/5 * * * *", timezone="Mars/Olympus")
        assert await naq.list_scheduled_jobs() == []

        # A bad cron in a modification leaves the stored schedule as it was.
        job = await queue.schedule(jobs.noop, cron="*/5 * * * *")
        with pytest.raises(naq.ConfigurationError, match=re.escape("'0 0 32 * *'")):
            await queue.modify_scheduled_job(job.job_id, cron="0 0 32 * *")
        record = await schedule_record(job.job_id)
        assert record is not None and record.cron == "*/5 * * * *"


async def test_a_negative_delay_is_refused_naming_it() -> None:
    async with Queue(Q) as queue:
        with pytest.raises(naq.ConfigurationError, match=r"delta=-5\b"):
            await queue.enqueue_in(-5, jobs.noop)
        with pytest.raises(naq.ConfigurationError, match=r"delta=-0\.25\b.*negative"):
            await naq.enqueue_in(-0.25, jobs.noop, queue_name=Q)
        with pytest.raises(naq.ConfigurationError, match="delta=.*negative"):
            await queue.enqueue_in(timedelta(seconds=-3), jobs.noop)
        with pytest.raises(naq.ConfigurationError, match=r"interval=-1\b"):
            await queue.schedule(jobs.noop, interval=-1)
        with pytest.raises(naq.ConfigurationError, match=r"repeat=0\b"):
            await queue.schedule(jobs.noop, interval=1, repeat=0)
        assert await naq.list_scheduled_jobs() == []


# -- control -----------------------------------------------------------------------------------


async def test_a_paused_schedule_never_fires_and_resumes() -> None:
    async with running_scheduler(), running_worker(Q), Queue(Q) as queue:
        job = await queue.schedule(jobs.async_sleep, 0, interval=0.5)
        assert await queue.pause_scheduled_job(job.job_id)
        record = await schedule_record(job.job_id)
        assert record is not None and record.status == "paused"
        assert [r.job_id for r in await naq.list_scheduled_jobs(status="paused")] == [job.job_id]
        # Three intervals pass: no run appears.
        with pytest.raises(naq.JobTimeoutError):
            await naq.wait_for_job(job.job_id, timeout=1.5)
        assert (await schedule_record(job.job_id)).runs == 0  # type: ignore[union-attr]

        assert await queue.resume_scheduled_job(job.job_id)
        info = await naq.wait_for_job(job.job_id, timeout=5)
        assert info.status == naq.JobStatus.COMPLETED
        record = await schedule_record(job.job_id)
        assert record is not None and record.status == "active" and record.runs >= 1


async def test_a_cancelled_schedule_never_runs_again() -> None:
    async with running_scheduler(), running_worker(Q), Queue(Q) as queue:
        job = await queue.schedule(jobs.async_sleep, 0, interval=0.5)
        await naq.wait_for_job(job.job_id, timeout=5)
        assert await naq.cancel_scheduled_job(job.job_id) is True
        assert await schedule_record(job.job_id) is None
        # Run 2 may have been on its way as we cancelled; run 3 never comes.
        await assert_never_runs(run_id(job.job_id, 3), within=1.5)
        with pytest.raises(naq.JobNotFoundError, match=job.job_id):
            await queue.cancel_scheduled_job(job.job_id)


async def test_unknown_schedule_ids_raise_not_found_naming_the_id() -> None:
    unknown = "no-such-schedule"
    async with Queue(Q) as queue:
        for call in (
            queue.pause_scheduled_job,
            queue.resume_scheduled_job,
            queue.cancel_scheduled_job,
            naq.pause_scheduled_job,
            naq.resume_scheduled_job,
            naq.cancel_scheduled_job,
        ):
            with pytest.raises(naq.JobNotFoundError, match=unknown):
                await call(unknown)
        with pytest.raises(naq.JobNotFoundError, match=unknown):
            await queue.modify_scheduled_job(unknown, interval=5)
        with pytest.raises(naq.JobNotFoundError, match=unknown):
            await naq.modify_scheduled_job(unknown, cron="* * * * *")
        with pytest.raises(naq.ConfigurationError, match="sleeping"):
            await naq.list_scheduled_jobs(status="sleeping")
        assert await naq.list_scheduled_jobs() == []


async def test_pausing_a_paused_schedule_or_resuming_an_active_one_returns_false() -> None:
    async with Queue(Q) as queue:
        job = await queue.schedule(jobs.noop, interval=60)
        assert await queue.resume_scheduled_job(job.job_id) is False  # active already
        assert await queue.pause_scheduled_job(job.job_id) is True
        assert await naq.pause_scheduled_job(job.job_id) is False  # paused already
        assert (await schedule_record(job.job_id)).status == "paused"  # type: ignore[union-attr]
        assert await naq.resume_scheduled_job(job.job_id) is True
        assert await queue.resume_scheduled_job(job.job_id) is False
        assert (await schedule_record(job.job_id)).status == "active"  # type: ignore[union-attr]
        assert await naq.cancel_scheduled_job(job.job_id) is True
        with pytest.raises(naq.JobNotFoundError, match=job.job_id):
            await naq.pause_scheduled_job(job.job_id)


async def test_waiting_for_an_unknown_id_is_refused_but_a_later_run_is_waited_for() -> None:
    with pytest.raises(naq.JobNotFoundError, match="never-made-1"):
        await naq.wait_for_job("never-made-1")  # no timeout: without the check, it hangs
    async with running_scheduler(), running_worker(Q), Queue(Q) as queue:
        job = await queue.schedule(jobs.add, 2, 3, interval=0.3, repeat=2)
        # Run 2 has no record until it is enqueued, but its schedule exists: it is waited for.
        info = await naq.wait_for_job(run_id(job.job_id, 2), timeout=5)
    assert info.status == naq.JobStatus.COMPLETED and info.result == 5


async def test_modifying_the_interval_takes_effect() -> None:
    async with running_scheduler(), running_worker(Q), Queue(Q) as queue:
        job = await queue.schedule(jobs.async_sleep, 0, interval=30)
        record = await schedule_record(job.job_id)
        assert record is not None and record.interval == 30
        assert await queue.modify_scheduled_job(job.job_id, interval=0.5)
        record = await schedule_record(job.job_id)
        assert record is not None and record.interval == 0.5 and record.next_run < time.time() + 1
        info = await naq.wait_for_job(job.job_id, timeout=2)
        assert info.status == naq.JobStatus.COMPLETED

        # Fields that can't be changed are refused, naming them; the record stays as it is.
        with pytest.raises(naq.ConfigurationError, match="queue"):
            await queue.modify_scheduled_job(job.job_id, queue="elsewhere")
        with pytest.raises(naq.ConfigurationError, match="func"):
            await naq.modify_scheduled_job(job.job_id, func="tests.jobs:add")
        record = await schedule_record(job.job_id)
        assert record is not None and record.queue == Q and record.interval == 0.5


async def test_modifying_the_next_run_of_a_one_shot_job() -> None:
    async with running_scheduler(), running_worker(Q), Queue(Q) as queue:
        far = datetime(2999, 1, 1, tzinfo=timezone.utc)
        job = await queue.enqueue_at(far, jobs.async_sleep, 0)
        due = datetime.now(timezone.utc) + timedelta(seconds=0.5)
        assert await queue.modify_scheduled_job(job.job_id, scheduled_timestamp_utc=due)
        start, _end = await job.result(timeout=5)
        assert 0.0 <= start - due.timestamp() <= 0.5, start - due.timestamp()


async def test_modifying_the_timezone_of_a_cron_schedule_moves_its_next_run() -> None:
    async with Queue(Q) as queue:
        job = await queue.schedule(jobs.noop, cron="0 9 * * *")  # 09:00 UTC
        assert await queue.modify_scheduled_job(job.job_id, timezone="Asia/Tokyo")
        record = await schedule_record(job.job_id)
        assert record is not None and record.timezone == "Asia/Tokyo"
        # The next run is the next 09:00 in Tokyo (00:00 UTC), not the 09:00 UTC planned before.
        due = datetime.fromtimestamp(record.next_run, tz=ZoneInfo("Asia/Tokyo"))
        assert (due.hour, due.minute) == (9, 0), due
        assert 0 < record.next_run - time.time() <= 86400


async def test_a_schedule_just_created_is_always_listed() -> None:
    # Read-your-writes for listings, many times over: a listing that stops reading early (e.g.
    # trusting a watcher's first "caught up" marker) shows up here as a missing schedule.
    async with Queue(Q) as queue:
        created = []
        for i in range(300):
            job = await queue.enqueue_at(time.time() + 3600, jobs.noop)
            created.append(job.job_id)
            listed = await naq.list_scheduled_jobs(job_id=job.job_id)
            assert [r.job_id for r in listed] == [job.job_id], f"read {i}: schedule not listed"
        assert {r.job_id for r in await naq.list_scheduled_jobs(queue=Q)} == set(created)


# -- the _sync twins ---------------------------------------------------------------------------


def test_the_sync_twins_work() -> None:
    with thread_scheduler(), thread_worker(Q):
        job = naq.schedule_sync(jobs.add, 1, 2, interval=1.0, queue_name=Q)
        schedule_id = job.job_id
        [info] = naq.list_scheduled_jobs_sync(job_id=schedule_id)
        assert info.interval == 1.0 and info.status == "active" and info.args == [1, 2]

        assert naq.pause_scheduled_job_sync(schedule_id)
        assert [i.job_id for i in naq.list_scheduled_jobs_sync(status="paused")] == [schedule_id]
        assert naq.list_scheduled_jobs_sync(status="active") == []
        assert naq.modify_scheduled_job_sync(schedule_id, interval=0.3)
        [info] = naq.list_scheduled_jobs_sync(queue=Q)
        assert info.interval == 0.3 and info.status == "paused"
        with pytest.raises(naq.JobTimeoutError):
            naq.wait_for_job_sync(schedule_id, timeout=0.8)  # paused: the 0.3 s tick never fires

        assert naq.resume_scheduled_job_sync(schedule_id)
        assert naq.wait_for_job_sync(schedule_id, timeout=5).result == 3
        assert naq.resume_scheduled_job_sync(schedule_id) is False  # active already
        assert naq.cancel_scheduled_job_sync(schedule_id)
        for call in (
            naq.cancel_scheduled_job_sync,
            naq.pause_scheduled_job_sync,
            naq.resume_scheduled_job_sync,
        ):
            with pytest.raises(naq.JobNotFoundError, match=schedule_id):
                call(schedule_id)
        with pytest.raises(naq.JobNotFoundError):
            naq.modify_scheduled_job_sync(schedule_id, interval=1)

        t0 = time.time()
        later = naq.enqueue_in_sync(0.3, jobs.add, 2, 2, queue_name=Q)
        at = naq.enqueue_at_sync(
            datetime.now(timezone.utc) + timedelta(seconds=0.3), jobs.add, 3, 3, queue_name=Q
        )
        assert later.result_sync(timeout=5) == 4
        assert at.result_sync(timeout=5) == 6
        for one_shot in (later, at):
            assert naq.get_job_sync(one_shot.job_id).enqueued_at >= t0 + 0.3  # type: ignore[operator]
        assert naq.list_scheduled_jobs_sync() == []


async def test_a_round_nats_fails_is_tried_again_not_the_end_of_the_scheduler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node lost mid-round makes recording a run time out: the scheduler goes on and the
    # run is recorded at the next round (before, the error ended the scheduler).
    failures = [naq.NaqConnectionError("NATS did not answer in time")]
    advance = naq.Scheduler._advance

    async def flaky_advance(self: naq.Scheduler, schedule_id: str, due: float) -> None:
        if failures:
            raise failures.pop()
        await advance(self, schedule_id, due)

    monkeypatch.setattr(naq.Scheduler, "_advance", flaky_advance)
    async with running_scheduler() as scheduler, running_worker(Q):
        job = await naq.enqueue_in(timedelta(seconds=0.2), jobs.add, 2, 3, queue_name=Q)
        assert await job.result(timeout=10) == 5
        await schedule_removed(job.job_id)
        assert not failures
        assert scheduler.enqueued >= 1
