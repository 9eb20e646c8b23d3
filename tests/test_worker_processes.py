"""Worker processes (`python -m naq worker`) under faults: SIGKILL, long jobs, SIGTERM, no NATS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import naq
from naq import Queue
from tests import jobs
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parent.parent
Q = "procs"


class WorkerProcs:
    """Starts worker processes for one test and kills whatever is left at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "naq", "worker", Q, "--name", name, "-c", "1", *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        self.logs[name] = log
        return proc

    def output(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    async def wait_listed(self, *names: str) -> None:
        """Wait until every named worker heartbeats (fails early if one exits)."""

        async def all_listed() -> bool:
            for name in names:
                code = self.procs[name].poll()
                assert code is None, f"worker {name} exited {code}:\n{self.output(name)}"
            listed = {w.name for w in await naq.list_workers()}
            return set(names) <= listed

        await wait_until(all_listed, timeout=20, interval=0.1)

    def cleanup(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path, nats_url: str) -> Iterator[WorkerProcs]:
    procs = WorkerProcs(tmp_path)
    try:
        yield procs
    finally:
        procs.cleanup()


def _runs(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [(tag, int(pid)) for tag, pid in (line.split() for line in log.read_text().splitlines())]


async def test_sigkill_mid_job_runs_it_again_elsewhere(
    workers: WorkerProcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    names = ["kill-a-" + uuid.uuid4().hex[:4], "kill-b-" + uuid.uuid4().hex[:4]]
    for name in names:
        workers.start(name)
    await workers.wait_listed(*names)
    log = tmp_path / "runs.log"
    job = await Queue(Q).enqueue(jobs.record_run, str(log), "killed", 1.5)

    first = await wait_until(lambda: _runs(log), timeout=10)
    victim_pid = first[0][1]
    by_pid = {workers.procs[name].pid: name for name in names}
    assert victim_pid in by_pid, (victim_pid, by_pid)
    victim = by_pid[victim_pid]
    survivor = next(name for name in names if name != victim)
    os.kill(victim_pid, signal.SIGKILL)

    assert await job.result(timeout=20) == "killed"
    runs = _runs(log)
    assert [tag for tag, _ in runs] == ["killed", "killed"]
    assert runs[1][1] == workers.procs[survivor].pid != victim_pid
    info = await naq.get_job(job.job_id)
    assert info.status == naq.JobStatus.COMPLETED
    assert info.worker == survivor
    assert workers.procs[victim].wait(5) == -signal.SIGKILL


async def test_job_longer_than_ack_wait_runs_once(
    workers: WorkerProcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    names = ["long-a-" + uuid.uuid4().hex[:4], "long-b-" + uuid.uuid4().hex[:4]]
    for name in names:
        workers.start(name)
    await workers.wait_listed(*names)
    log = tmp_path / "runs.log"
    job = await Queue(Q).enqueue(jobs.record_run, str(log), "long", 2.5)
    assert await job.result(timeout=20) == "long"
    runs = _runs(log)
    assert len(runs) == 1, runs
    assert runs[0][1] in {workers.procs[name].pid for name in names}
    info = await naq.get_job(job.job_id)
    assert info.attempt == 1
    assert all(workers.procs[name].poll() is None for name in names)


async def test_sigterm_lets_the_running_job_finish_and_exits_zero(
    workers: WorkerProcs, tmp_path: Path
) -> None:
    name = "term-" + uuid.uuid4().hex[:4]
    proc = workers.start(name, "--shutdown-grace", "10")
    await workers.wait_listed(name)
    log = tmp_path / "runs.log"
    job = await Queue(Q).enqueue(jobs.record_run, str(log), "term", 1.5)

    async def running() -> bool:
        return (await naq.get_job(job.job_id)).status == naq.JobStatus.RUNNING

    await wait_until(running, timeout=10)
    sent_at = time.time()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 15)
    assert code == 0, workers.output(name)
    # The result was stored before the process exited: no waiting needed.
    assert await naq.fetch_job_result(job.job_id) == "term"
    info = await naq.get_job(job.job_id)
    assert info.status == naq.JobStatus.COMPLETED
    assert info.ended_at is not None and info.ended_at > sent_at
    assert len(_runs(log)) == 1
    assert name not in [w.name for w in await naq.list_workers()]
    assert "Traceback" not in workers.output(name)


@pytest.mark.slow
def test_unreachable_server_gives_one_line_and_no_traceback() -> None:
    url = "nats://127.0.0.1:1"
    env = {k: v for k, v in os.environ.items() if k != "NAQ_NATS_URL"}
    commands = [["list-workers", "--nats-url", url], ["worker", "q1", "--nats-url", url]]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "naq", *command],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for command in commands
    ]
    try:
        outcomes = [proc.communicate(timeout=30) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for command, proc, (out, err) in zip(commands, procs, outcomes, strict=True):
        text = (out + err).decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        assert proc.returncode != 0, (command, text)
        assert "Traceback" not in text, (command, text)
        assert len(lines) == 1, (command, text)
        assert url in lines[0], (command, text)
