"""Fencing under faults, against a real nats-server: poison jobs, late acks, a thawed leader.

* a poison job (always fails, or kills its worker) is delivered a bounded number of times, then
  dead-lettered with its payload and reason, while the other jobs of its queue keep completing;
* a worker frozen with SIGSTOP past its ack wait, whose job another worker then runs, is thawed
  and finishes the same job late: one result is stored, and the job is recorded completed once;
* a scheduler leader frozen past its lease, replaced by a standby, then thawed: every due time of
  an interval schedule is published once. JetStream dedupes the tick's ``Nats-Msg-Id``
  (``schedule-id:due_ms``) inside the jobs stream's duplicate window, so counting stored jobs
  alone would hide a second publish of the same tick; the test also counts the publishes
  themselves, on the wire, with a core-NATS subscription to the queue subject.

Existing tests cover neighbours of these cases (``test_worker_processes``: a long job kept alive
by in-progress acks, a SIGKILLed worker; ``test_scheduler_ha``: takeover counted from logs and
executed runs); this file adds the stale worker's late result and the wire-level tick count.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import nats
import pytest

import naq
from naq.models import JobStatus, envelope_decoder, result_decoder, status_decoder
from naq.names import Names
from tests import fuzz_jobs, jobs
from tests.helpers import (
    dead_letter_subscription,
    next_dead_letter,
    prefix,
    running_worker,
    wait_until,
)
from tests.test_scheduler_ha import LOCK_TTL, LockWatch, scheduler_processes, wait_started
from tests.test_worker_processes import Q as PROCS_QUEUE
from tests.test_worker_processes import WorkerProcs

pytestmark = [pytest.mark.slow]


async def _consumer_state(nats_url: str, queue: str) -> tuple[int, int, int]:
    """(messages in the jobs stream, pending, ack-pending) for ``queue``'s shared consumer."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        names = Names(prefix())
        stream = await js.stream_info(names.jobs_stream)
        consumer = await js.consumer_info(names.jobs_stream, names.consumer(queue))
        return stream.state.messages, consumer.num_pending, consumer.num_ack_pending
    finally:
        await nc.close()


def _log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- (a) poison messages ----------------------------------------------------------------------


async def test_poison_job_is_tried_max_retries_plus_one_times_while_others_flow(
    nats_url: str, tmp_path: Path
) -> None:
    """A job that always raises, with max_retries=2, runs exactly 3 times, ends in the dead letter
    with its payload and reason, and 30 other jobs of its queue complete while it is retrying."""
    queue_name = "poison"
    retries = 2
    runs_log = tmp_path / "poison.log"
    queue = naq.Queue(queue_name)
    async with (
        dead_letter_subscription(nats_url, queue_name) as letters,
        running_worker(queue_name, concurrency=4) as worker,
    ):
        poison = await queue.enqueue(
            fuzz_jobs.always_fail, str(runs_log), max_retries=retries, retry_delay=1.0
        )

        async def retrying() -> bool:
            return (await naq.get_job(poison.job_id)).status == JobStatus.RETRY

        await wait_until(retrying, timeout=10)
        others = await queue.enqueue_many([(jobs.add, (i, i), {}) for i in range(30)])
        assert await asyncio.gather(*(job.result(timeout=10) for job in others)) == [
            2 * i for i in range(30)
        ]
        others_ended = [(await naq.get_job(job.job_id)).ended_at or 0.0 for job in others]
        assert (await naq.get_job(poison.job_id)).status not in JobStatus.ENDED

        letter = await next_dead_letter(letters, timeout=15)

    runs = [float(line.split()[1]) for line in _log_lines(runs_log)]
    assert len(runs) == retries + 1, runs
    # Every other job ended before the poison job's last attempt even started.
    assert max(others_ended) < runs[-1], (max(others_ended), runs)

    assert letter.job_id == poison.job_id
    assert letter.reason == f"failed after {retries + 1} attempt(s)"
    assert letter.attempt == retries + 1
    assert letter.error_type == "RuntimeError"
    assert letter.error is not None and "poison job fails on every attempt" in letter.error
    assert letter.traceback is not None and "always_fail" in letter.traceback
    envelope = envelope_decoder.decode(letter.payload)
    assert envelope.id == poison.job_id and envelope.args == [str(runs_log)]
    assert envelope.fn.endswith("always_fail")

    info = await naq.get_job(poison.job_id)
    assert info.status == JobStatus.FAILED and info.attempt == retries + 1
    assert worker.failed == 1 and worker.processed == 30
    # Nothing of the poison job is left to deliver: the message was acked out of the work queue.
    assert await _consumer_state(nats_url, queue_name) == (0, 0, 0)
    assert len(_log_lines(runs_log)) == retries + 1


async def test_job_that_kills_its_worker_is_dead_lettered_after_the_crash_allowance(
    tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that ends its worker process (os._exit) on every delivery, with max_retries=0 and
    NAQ_MAX_CRASH_REDELIVERIES=1, runs exactly 2 times (its attempt plus one crash
    redelivery), is dead-lettered on the 3rd delivery without running, and the other jobs of the
    queue complete on the surviving worker."""
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    monkeypatch.setenv("NAQ_MAX_CRASH_REDELIVERIES", "1")
    runs_log = tmp_path / "crash.log"
    procs = WorkerProcs(tmp_path)
    try:
        names = [f"crash{n}-{uuid.uuid4().hex[:4]}" for n in range(3)]
        for name in names:
            procs.start(name, "-c", "2", "-l", "WARNING")
        await procs.wait_listed(*names)
        queue = naq.Queue(PROCS_QUEUE)
        async with dead_letter_subscription(nats_url, PROCS_QUEUE) as letters:
            crasher = await queue.enqueue(fuzz_jobs.crash_worker, str(runs_log))
            await wait_until(lambda: _log_lines(runs_log), timeout=10)
            others = await queue.enqueue_many([(jobs.add, (i, 1), {}) for i in range(20)])
            assert await asyncio.gather(*(job.result(timeout=20) for job in others)) == [
                i + 1 for i in range(20)
            ]
            letter = await next_dead_letter(letters, timeout=20)
        assert letter.job_id == crasher.job_id
        # The delivery count is in the error; the reason is the worker's generic "failed after
        # N attempt(s)" line (N counts attempts that ended, and crashed runs never end).
        assert letter.reason.strip()
        assert letter.error == "delivered 3 times without finishing (worker crashes?)"
        assert letter.error_type == "DeliveryLimitExceeded"
        assert envelope_decoder.decode(letter.payload).id == crasher.job_id
        assert len(_log_lines(runs_log)) == 2, _log_lines(runs_log)
        exit_codes = sorted(
            code for code in (proc.poll() for proc in procs.procs.values()) if code is not None
        )
        assert exit_codes == [3, 3], exit_codes  # two crashed, the third one dead-lettered it
        # The dead letter is written before the outcome (a crash in between repeats the letter
        # rather than losing it), so the outcome may still be on its way here: wait for it.
        with pytest.raises(naq.JobExecutionError, match="delivered 3 times"):
            await crasher.result(timeout=10)
        assert (await naq.get_job(crasher.job_id)).status == JobStatus.FAILED
        assert await _consumer_state(nats_url, PROCS_QUEUE) == (0, 0, 0)
    finally:
        procs.cleanup()


# -- (b) a late ack from a thawed worker -------------------------------------------------------


async def test_worker_frozen_past_its_ack_wait_cannot_store_a_second_result(
    tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A runs a 1.5 s job and is frozen (SIGSTOP) in the middle; after the 1 s ack wait
    worker B is given the job and completes it. A is thawed, finishes its run and tries to store
    its outcome: one result stays (B's), the status ends completed by B, and the job is recorded
    completed exactly once."""
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    monkeypatch.setenv("NAQ_WORKER_HEARTBEAT_INTERVAL", "0.5")
    runs_log = tmp_path / "runs.log"
    job_id = "fenced-" + uuid.uuid4().hex[:8]
    procs = WorkerProcs(tmp_path)
    nc = await nats.connect(nats_url)
    statuses: list[Any] = []
    try:
        name_a, name_b = "stale-" + uuid.uuid4().hex[:4], "fresh-" + uuid.uuid4().hex[:4]
        proc_a = procs.start(name_a, "-l", "WARNING")
        await procs.wait_listed(name_a)

        # Every write to the job's status key, as it happens (the bucket keeps only 5 revisions).
        js = nc.jetstream()
        status_kv = await js.key_value(f"{prefix()}_job_status")
        watcher = await status_kv.watch(job_id)

        async def follow() -> None:
            async for entry in watcher:
                if entry is not None and entry.value:
                    statuses.append(status_decoder.decode(entry.value))

        follower = asyncio.create_task(follow())

        job = await naq.Queue(PROCS_QUEUE).enqueue(
            fuzz_jobs.start_sleep_end, str(runs_log), "fenced", 1.5, job_id=job_id
        )
        await wait_until(lambda: f"start {proc_a.pid}" in _log_lines(runs_log), timeout=10)
        os.kill(proc_a.pid, signal.SIGSTOP)

        proc_b = procs.start(name_b, "-l", "WARNING")
        # B can only get the job once A's ack wait ran out: its completion is the event.
        info = await naq.wait_for_job(job.job_id, timeout=20)
        assert info.status == JobStatus.COMPLETED and info.worker == name_b, info
        assert _log_lines(runs_log) == [
            f"start {proc_a.pid}",
            f"start {proc_b.pid}",
            f"end {proc_b.pid}",
        ]

        os.kill(proc_a.pid, signal.SIGCONT)
        # A's thread wakes past its sleep, ends its run and stores (tries to) its outcome.
        await wait_until(lambda: f"end {proc_a.pid}" in _log_lines(runs_log), timeout=10)

        async def a_is_done() -> bool:
            for worker in await naq.list_workers():
                if worker.name == name_a:
                    return worker.processed == 1 and not worker.running
            return False

        await wait_until(a_is_done, timeout=10)
        assert proc_a.poll() is None and proc_b.poll() is None

        # Exactly one result was ever stored for the job, and it is B's.
        results_stream = f"KV_{prefix()}_results"
        subject = f"$KV.{prefix()}_results.{job_id}"
        stream = await js.stream_info(results_stream, subjects_filter=subject)
        assert (stream.state.subjects or {}) == {subject: 1}
        stored = result_decoder.decode((await js.get_last_msg(results_stream, subject)).data)
        assert stored.status == JobStatus.COMPLETED and stored.worker == name_b
        assert await job.result(timeout=1) == "fenced"

        final = await naq.get_job(job_id)
        completed = [record for record in statuses if record.status == JobStatus.COMPLETED]
        assert final.status == JobStatus.COMPLETED
        assert final.worker == name_b, (
            f"status says {final.worker} ran the job, its stored result says {name_b}"
        )
        assert len(completed) == 1, [(r.status, r.worker) for r in statuses]
    finally:
        for proc in procs.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        procs.cleanup()
        if "follower" in locals():
            follower.cancel()
        await nc.close()


# -- (c) a scheduler leader thawed after losing its lease ------------------------------------


async def test_thawed_scheduler_leader_publishes_no_tick_twice(
    nats_url: str, tmp_path: Path
) -> None:
    """An every-1 s schedule, two schedulers (3 s lease); the leader is frozen 5 s, the standby
    takes over, the leader is thawed and the schedule runs on for 3 more ticks. Every due time
    was published exactly once (counted on the wire, where JetStream's dedupe can't hide a second
    publish), stored exactly once, on the schedule's 1 s grid, in order."""
    queue_name = "ticks"
    freeze = LOCK_TTL + 2.0
    published: list[tuple[str, str, float]] = []  # (Nats-Msg-Id, job id, when seen)
    observer = await nats.connect(nats_url)

    async def seen(msg: Any) -> None:
        job = envelope_decoder.decode(msg.data)
        published.append(((msg.headers or {}).get("Nats-Msg-Id", ""), job.id, time.time()))

    try:
        # A core subscription sees every publish on the subject, duplicates included.
        await observer.subscribe(f"{prefix()}.queue.{queue_name}", cb=seen)
        await observer.flush()
        with scheduler_processes(nats_url, tmp_path, ("fence-a", "fence-b")) as procs:
            async with LockWatch(nats_url) as lock:
                await wait_started(procs)
                leader, _ = await lock.holder()
                standby = next(name for name in procs if name != leader)
                schedule = await naq.schedule(jobs.noop, interval=1, queue_name=queue_name)
                await wait_until(lambda: len(published) >= 2, timeout=10)

                procs[leader].proc.send_signal(signal.SIGSTOP)
                stopped_at = time.time()
                new_leader, _ = await lock.holder(other_than=leader, timeout=15)
                assert new_leader == standby
                await wait_until(lambda: published[-1][2] > stopped_at, timeout=5)
                frozen_enqueued = procs[leader].enqueued()
                # The fault must outlast the lease: this sleep is the length of the freeze.
                await asyncio.sleep(max(0.0, stopped_at + freeze - time.time()))
                procs[leader].proc.send_signal(signal.SIGCONT)
                thawed_at = time.time()
                await wait_until(
                    lambda: f"scheduler {leader} lost the lease" in procs[leader].text(), 10
                )
                await wait_until(
                    lambda: sum(1 for _, _, at in published if at > thawed_at) >= 3, timeout=10
                )
                await naq.cancel_scheduled_job(schedule.job_id)
                assert procs[leader].enqueued() == frozen_enqueued
                assert await lock.current() == standby

        # Every publish that happened has reached the observer once the schedulers are gone.
        await observer.flush()
        js = observer.jetstream()
        stream = Names(prefix()).jobs_stream
        info = await js.stream_info(stream)
        stored: list[tuple[str, str]] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            job = envelope_decoder.decode(msg.data)
            stored.append(((msg.headers or {}).get("Nats-Msg-Id", ""), job.id))
    finally:
        await observer.close()

    wire = Counter(msg_id for msg_id, _, _ in published)
    twice = {msg_id: n for msg_id, n in wire.items() if n > 1}
    assert not twice, f"ticks published more than once (hidden by the stream's dedupe): {twice}"
    assert Counter(msg_id for msg_id, _ in stored) == wire  # each tick stored once, none lost
    assert len({job_id for _, job_id in stored}) == len(stored)  # one job (run id) per tick

    dues = []
    for msg_id, _, _ in published:
        schedule_id, _, due_ms = msg_id.rpartition(":")
        assert schedule_id == schedule.job_id, msg_id
        dues.append(int(due_ms))
    assert dues == sorted(dues) and len(set(dues)) == len(dues), dues
    # On the interval's grid (1000 ms; 1 ms of float rounding), with runs during and after the
    # freeze: the standby really took over, and the old leader really came back.
    assert all(abs((due - dues[0]) - round((due - dues[0]) / 1000) * 1000) <= 1 for due in dues)
    assert any(stopped_at < due / 1000 < thawed_at for due in dues), (dues, stopped_at)
    assert sum(1 for due in dues if due / 1000 > thawed_at) >= 2, (dues, thawed_at)
