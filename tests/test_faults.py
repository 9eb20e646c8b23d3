"""Fault suite: workers killed again and again while jobs flow; nothing lost, one result each."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import naq
from naq.broker import Broker
from naq.models import result_decoder
from naq.settings import get_settings
from tests import jobs
from tests.helpers import start_process, stop_processes

REPO = Path(__file__).resolve().parent.parent
Q = "faults"


def start_worker(name: str, log: Path) -> subprocess.Popen[bytes]:
    """A worker process whose jobs come back 2 s after it dies (short ack wait)."""
    env = dict(os.environ, NAQ_DEFAULT_ACK_WAIT="2", PYTHONUNBUFFERED="1")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "naq", "worker", Q, "--name", name, "-c", "10", "-l", "WARNING"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def stored_results(total: int) -> dict[str, str]:
    """job id -> status of every stored result (read straight from the bucket's stream)."""
    broker = await Broker.connect(get_settings())
    await broker.results_kv()
    entries = await broker.read_bucket(broker.names.results_bucket)
    results = {}
    for entry in entries:
        record = result_decoder.decode(entry.value)
        results[record.job_id] = record.status
    return results


async def kill_while_waiting(
    job_ids: list[str],
    tmp_path: Path,
    *,
    workers: int,
    seed: int,
    pause: tuple[float, float],
    most: int | None = None,
    tag: str = "w",
) -> tuple[list[naq.JobInfo], int]:
    """Run ``workers`` worker processes until every job of ``job_ids`` has ended, SIGKILLing
    a random one (and starting a new one in its place) after every pause drawn from
    ``pause`` seconds, at most ``most`` times. Returns the jobs' infos and the kills."""
    rng = random.Random(seed)
    procs = [start_worker(f"{tag}{n}", tmp_path / f"{tag}{n}.log") for n in range(workers)]
    spawned = workers
    kills = 0
    try:
        waiter = asyncio.gather(*(naq.wait_for_job(job_id, 150) for job_id in job_ids))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=rng.uniform(*pause))
            if waiter.done() or (most is not None and kills >= most):
                continue
            victim = rng.randrange(len(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            kills += 1
            procs[victim] = start_worker(f"{tag}{spawned}", tmp_path / f"{tag}{spawned}.log")
            spawned += 1
        return await waiter, kills
    finally:
        stop_processes(procs)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_workers_killed_every_1_5_s_lose_nothing(nats_url: str, tmp_path: Path) -> None:
    total = 600
    queue = naq.Queue(Q)
    run_log = tmp_path / "runs.log"
    created = await queue.enqueue_many(
        [(jobs.record_run, (str(run_log), f"job{i}", 0.15), {}) for i in range(total)]
    )
    ids = [job.job_id for job in created]
    infos, kills = await kill_while_waiting(ids, tmp_path, workers=3, seed=7, pause=(1.5, 1.5))
    assert kills >= 3, "the run ended before the workers were killed often enough"
    assert [info.status for info in infos] == ["completed"] * total
    results = await stored_results(total)
    assert set(results) == set(ids), "every job has a stored result, and only those jobs"
    assert set(results.values()) == {"completed"}
    # At-least-once: jobs interrupted by a kill ran again, but every job ran.
    ran = {line.split()[0] for line in run_log.read_text().splitlines()}
    assert ran == {f"job{i}" for i in range(total)}


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_server_killed_and_restarted_loses_no_acknowledged_job(
    fresh_server: naq.server.EmbeddedServer, tmp_path: Path
) -> None:
    total = 300
    queue = naq.Queue(Q)
    run_log = tmp_path / "runs.log"
    created = await queue.enqueue_many(
        [(jobs.record_run, (str(run_log), f"job{i}", 0.02), {}) for i in range(total)]
    )
    schedule = await queue.schedule(jobs.noop, interval=0.5)
    worker = start_process(tmp_path, "worker", "worker", Q, "-c", "4", "-l", "WARNING")
    scheduler = start_process(tmp_path, "scheduler", "scheduler", "-l", "WARNING")
    try:
        # Once the scheduler has fired and some jobs finished, crash the server mid-run and
        # bring it back on its store.
        await naq.wait_for_job(schedule.job_id, 30)
        await naq.wait_for_job(created[20].job_id, 30)
        await naq.disconnect()
        fresh_server.kill()
        await asyncio.sleep(1.0)
        fresh_server.start()
        infos = await asyncio.gather(*(naq.wait_for_job(job.job_id, 120) for job in created))
        assert [info.status for info in infos] == ["completed"] * total
        # The scheduler came back by itself too: a run after the restart completes.
        runs = {s.job_id: s.runs for s in await naq.list_scheduled_jobs(job_id=schedule.job_id)}
        later = runs[schedule.job_id] + 2
        info = await naq.wait_for_job(f"{schedule.job_id}_{later}", 30)
        assert info.status == "completed"
        assert worker.poll() is None and scheduler.poll() is None
    finally:
        stop_processes([worker, scheduler])
    ran = {line.split()[0] for line in run_log.read_text().splitlines()}
    assert ran == {f"job{i}" for i in range(total)}


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_workers_killed_while_parents_run_lose_no_dependent(
    nats_url: str, tmp_path: Path
) -> None:
    """Kills land anywhere in the parents' ends: after the result, between the release's
    publish and its claim, before the ack. Every dependent still runs."""
    total = 200
    queue = naq.Queue(Q)
    run_log = tmp_path / "runs.log"
    parents = await queue.enqueue_many(
        [(jobs.record_run, (str(run_log), f"parent{i}", 0.05), {}) for i in range(total)]
    )
    children = [
        await queue.enqueue(jobs.record_run, str(run_log), f"child{i}", depends_on=parent)
        for i, parent in enumerate(parents)
    ]
    infos, kills = await kill_while_waiting(
        [job.job_id for job in children],
        tmp_path,
        workers=2,
        seed=11,
        pause=(0.2, 0.6),
        most=12,
        tag="d",
    )
    assert kills >= 3, "the run ended before the workers were killed often enough"
    assert [info.status for info in infos] == ["completed"] * total
    ran = {line.split()[0] for line in run_log.read_text().splitlines()}
    assert ran >= {f"child{i}" for i in range(total)}
