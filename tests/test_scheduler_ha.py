"""High availability of the scheduler: two ``naq scheduler`` processes, the leader killed,
frozen or stopped, against a real nats-server.

The schedulers run as subprocesses (``python -m naq scheduler``) with a 3 s lease renewed every
second; the worker runs in-process. Who leads is read from the lock bucket with plain nats-py,
watching the ``leader_lock`` key. Runs are counted twice over: the job
``tests.jobs.record_job_id`` appends its own job id to a file at every execution, and the worker
counts the jobs it completed; with ``repeat=R`` the runs have the ids ``S, S_2 .. S_R``, so "no run
executed twice" is "the file lists exactly those R ids, once each, the worker completed R jobs,
and no run R+1 appears".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

import naq
from tests import jobs
from tests.helpers import assert_never_runs, prefix, running_worker, wait_until

pytestmark = [pytest.mark.usefixtures("nats_url"), pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
Q = "ha"
LOCK_TTL = 3
LOCK_RENEW = 1
#: After a crash the lease key expires TTL after the leader's last renewal (which came before the
#: crash), and a standby tries to take it once a poll (one renew interval): so the lease changes
#: hands at most TTL + renew interval after the crash (measured: 2.9-4.0 s); plus slack for a
#: loaded machine.
TAKEOVER_BOUND = LOCK_TTL + LOCK_RENEW + 1.0


def run_id(schedule_id: str, k: int) -> str:
    return schedule_id if k == 1 else f"{schedule_id}_{k}"


@dataclass
class SchedulerProc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def enqueued(self) -> list[str]:
        """The 'enqueued <job id>' debug lines this scheduler has logged."""
        return [line for line in self.text().splitlines() if "scheduler: enqueued" in line]


@contextlib.contextmanager
def scheduler_processes(
    url: str, tmp_path: Path, names: tuple[str, ...]
) -> Iterator[dict[str, SchedulerProc]]:
    """Start ``naq scheduler`` processes; kill whatever is left of them at the end."""
    env = dict(
        os.environ,
        NAQ_PREFIX=prefix(),
        NAQ_NATS_URL=url,
        NAQ_SCHEDULER_LOCK_TTL=str(LOCK_TTL),
        NAQ_SCHEDULER_LOCK_RENEW_INTERVAL=str(LOCK_RENEW),
    )
    procs: dict[str, SchedulerProc] = {}
    try:
        for name in names:
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "naq",
                        "scheduler",
                        "-u",
                        url,
                        "-i",
                        name,
                        "-l",
                        "DEBUG",
                    ],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs[name] = SchedulerProc(name, proc, log)
        yield procs
    finally:
        for sp in procs.values():
            if sp.proc.poll() is None:
                sp.proc.send_signal(signal.SIGCONT)
                sp.proc.kill()
            sp.proc.wait(10)


async def wait_started(procs: dict[str, SchedulerProc]) -> None:
    """Until every scheduler process has connected and started (seen in its log)."""

    def started() -> bool:
        for sp in procs.values():
            assert sp.proc.poll() is None, f"{sp.name} exited:\n{sp.text()}"
        return all(f"scheduler {sp.name} started" in sp.text() for sp in procs.values())

    await wait_until(started, timeout=15)


class LockWatch:
    """Watches the leader lock key; ``holder()`` waits for a holder other than a given one."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> LockWatch:
        self.nc = await nats.connect(self.url)
        js = self.nc.jetstream()
        bucket = f"{prefix()}_scheduler_lock"

        async def lock_bucket() -> object:
            # The schedulers create the bucket (with its TTL): nothing to await until it exists.
            with contextlib.suppress(nats.js.errors.BucketNotFoundError):
                return await js.key_value(bucket)
            return None

        self.kv = await wait_until(lock_bucket, timeout=15)
        self.watcher = await self.kv.watch("leader_lock")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.watcher.stop()
        await self.nc.close()

    async def holder(
        self, other_than: str | None = None, timeout: float = 15.0
    ) -> tuple[str, float]:
        """The next lock holder (instance id) that isn't ``other_than``, and when it was seen."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no leader other than {other_than!r} within {timeout}s"
            try:
                entry = await self.watcher.updates(timeout=remaining)
            except nats.errors.TimeoutError:
                continue
            if entry is None or entry.operation in ("DEL", "PURGE") or not entry.value:
                continue
            name = entry.value.decode()
            if name != other_than:
                return name, time.time()

    async def current(self) -> str | None:
        try:
            entry = await self.kv.get("leader_lock")
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None


@contextlib.asynccontextmanager
async def ha_setup(
    url: str, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, SchedulerProc], LockWatch, naq.Worker]]:
    with scheduler_processes(url, tmp_path, ("ha-a", "ha-b")) as procs:
        async with LockWatch(url) as lock, running_worker(Q) as worker:
            await wait_started(procs)
            yield procs, lock, worker


async def check_each_run_executed_once(
    schedule_id: str, repeat: int, log: Path, worker: naq.Worker
) -> list[naq.JobInfo]:
    """All ``repeat`` runs completed, each executed once, and nothing beyond them."""
    infos = [
        await naq.wait_for_job(run_id(schedule_id, k), timeout=10) for k in range(1, repeat + 1)
    ]
    run_ids = [run_id(schedule_id, k) for k in range(1, repeat + 1)]
    assert [i.status for i in infos] == [naq.JobStatus.COMPLETED] * repeat
    assert [i.result for i in infos] == run_ids
    await assert_never_runs(run_id(schedule_id, repeat + 1), within=1.2)
    executed = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(executed) == sorted(run_ids), executed  # each run once, no duplicate job id
    assert worker.processed == repeat
    assert await naq.list_scheduled_jobs(job_id=schedule_id) == []
    return infos


async def test_sigkill_of_the_leader_standby_continues_without_duplicates(
    nats_url: str, tmp_path: Path
) -> None:
    runs_log = tmp_path / "runs.log"
    repeat = 5
    async with ha_setup(nats_url, tmp_path) as (procs, lock, worker):
        leader, _ = await lock.holder()
        standby = next(name for name in procs if name != leader)
        job = await naq.schedule(
            jobs.record_job_id, str(runs_log), interval=1, repeat=repeat, queue_name=Q
        )
        schedule_id = job.job_id
        await naq.wait_for_job(run_id(schedule_id, 2), timeout=10)

        procs[leader].proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        await asyncio.to_thread(procs[leader].proc.wait, 10)
        new_leader, took_over_at = await lock.holder(other_than=leader, timeout=15)
        assert new_leader == standby
        print(f"SIGKILL: lease taken over {took_over_at - killed_at:.2f}s after the kill")
        assert took_over_at - killed_at < TAKEOVER_BOUND, took_over_at - killed_at

        infos = await check_each_run_executed_once(schedule_id, repeat, runs_log, worker)
        # Runs 3..5 came from the standby, after the kill; the first within the takeover bound.
        after = [i for i in infos if i.enqueued_at is not None and i.enqueued_at > killed_at]
        assert len(after) == 3, [(i.job_id, i.enqueued_at) for i in infos]
        assert after[0].enqueued_at - killed_at < TAKEOVER_BOUND  # type: ignore[operator]
        assert len(procs[standby].enqueued()) == 3, procs[standby].enqueued()


async def test_a_frozen_leader_enqueues_nothing_stale_when_thawed(
    nats_url: str, tmp_path: Path
) -> None:
    runs_log = tmp_path / "runs.log"
    repeat = 7
    freeze = LOCK_TTL + 2.0
    async with ha_setup(nats_url, tmp_path) as (procs, lock, worker):
        leader, _ = await lock.holder()
        standby = next(name for name in procs if name != leader)
        job = await naq.schedule(
            jobs.record_job_id, str(runs_log), interval=1, repeat=repeat, queue_name=Q
        )
        schedule_id = job.job_id
        await naq.wait_for_job(schedule_id, timeout=10)

        procs[leader].proc.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        new_leader, took_over_at = await lock.holder(other_than=leader, timeout=15)
        assert new_leader == standby
        print(f"SIGSTOP: lease taken over {took_over_at - stopped_at:.2f}s after the freeze")
        assert took_over_at - stopped_at < TAKEOVER_BOUND
        # The standby is enqueueing while the leader is frozen.
        await naq.wait_for_job(run_id(schedule_id, 2), timeout=5)
        # The fault lasts past the lease: this sleep is the length of the freeze, not a wait.
        await asyncio.sleep(max(0.0, stopped_at + freeze - time.time()))
        frozen_enqueued = procs[leader].enqueued()
        procs[leader].proc.send_signal(signal.SIGCONT)
        thawed_at = time.time()

        # The thawed scheduler finds out from NATS that it lost the lease.
        await wait_until(lambda: f"scheduler {leader} lost the lease" in procs[leader].text(), 10)
        infos = await check_each_run_executed_once(schedule_id, repeat, runs_log, worker)
        assert any(i.enqueued_at > thawed_at for i in infos)  # type: ignore[operator]
        # Not one enqueue by the old leader after it was thawed, and the standby still leads.
        assert procs[leader].enqueued() == frozen_enqueued
        assert len(frozen_enqueued) + len(procs[standby].enqueued()) == repeat
        assert await lock.current() == standby
        assert procs[leader].proc.poll() is None  # it lives on as the standby


async def test_a_leader_stopped_with_sigterm_hands_over_at_once(
    nats_url: str, tmp_path: Path
) -> None:
    runs_log = tmp_path / "runs.log"
    repeat = 3
    async with ha_setup(nats_url, tmp_path) as (procs, lock, worker):
        leader, _ = await lock.holder()
        standby = next(name for name in procs if name != leader)
        job = await naq.schedule(
            jobs.record_job_id, str(runs_log), interval=1, repeat=repeat, queue_name=Q
        )
        schedule_id = job.job_id
        await naq.wait_for_job(schedule_id, timeout=10)

        procs[leader].proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(procs[leader].proc.wait, 10) == 0
        exited_at = time.time()
        new_leader, took_over_at = await lock.holder(other_than=leader, timeout=5)
        assert new_leader == standby
        # The leader gives the lease back as it stops: no waiting for the TTL.
        print(f"SIGTERM: lease taken over {took_over_at - exited_at:.2f}s after the leader exited")
        assert took_over_at - exited_at < 2.0, took_over_at - exited_at
        assert f"scheduler {leader} stopped" in procs[leader].text()

        infos = await check_each_run_executed_once(schedule_id, repeat, runs_log, worker)
        assert infos[-1].enqueued_at > exited_at  # type: ignore[operator]
        assert len(procs[standby].enqueued()) >= 1
