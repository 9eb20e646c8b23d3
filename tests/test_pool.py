"""The process pool (`naq worker Q --processes N`): its children, their replacement, the
signals and remote stops that end it, and the command line its children get."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

import naq
from naq import Queue
from naq.cli import app
from naq.cli.pool_args import pool_child_argv
from naq.errors import ConfigurationError
from naq.monitor import WorkerInfo
from naq.settings import Settings
from naq.worker.pool import (
    FIRST_BACKOFF,
    MAX_BACKOFF,
    PARENT_FD_ENV,
    STEADY_LIFE,
    Backoff,
    describe_exit,
    run_pool,
    watch_supervisor,
)
from tests import pool_jobs
from tests.helpers import naq_cli, wait_until

REPO = Path(__file__).resolve().parent.parent
Q = "pooled"
STARTED = re.compile(r"started (\S+) \(pid (\d+)\)")


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


class PoolProcess:
    """One `naq worker Q -P N` process of a test; it and every child it started are killed
    at the end if still running."""

    def __init__(self, tmp_path: Path, name: str, *args: str) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "naq", "worker", Q, "--name", name, *args],
                cwd=REPO,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> list[tuple[str, int]]:
        """Every child the supervisor started, as (name, pid), in order."""
        return [(name, int(pid)) for name, pid in STARTED.findall(self.output())]

    async def wait_listed(self, count: int) -> dict[str, WorkerInfo]:
        """The children NAME-1 … NAME-count as list_workers shows them, once all are there."""
        wanted = {f"{self.name}-{i}" for i in range(1, count + 1)}

        async def listed() -> dict[str, WorkerInfo] | None:
            code = self.proc.poll()
            assert code is None, f"pool exited {code}:\n{self.output()}"
            workers = {w.name: w for w in await naq.list_workers()}
            return workers if wanted <= set(workers) else None

        workers = await wait_until(listed, timeout=30, interval=0.1)
        return {name: workers[name] for name in sorted(wanted)}

    async def wait_exit(self, timeout: float = 30) -> int:
        return await asyncio.to_thread(self.proc.wait, timeout)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for _, pid in self.started():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pools(tmp_path: Path, nats_url: str) -> Iterator[list[PoolProcess]]:
    started: list[PoolProcess] = []
    try:
        yield started
    finally:
        for pool in started:
            pool.cleanup()


def start_pool(pools: list[PoolProcess], tmp_path: Path, *args: str) -> PoolProcess:
    pool = PoolProcess(tmp_path, "pool-" + uuid.uuid4().hex[:6], *args)
    pools.append(pool)
    return pool


def marks(log: Path) -> list[tuple[str, str, int]]:
    """The lines of :func:`tests.pool_jobs.mark_run`'s log, as (start|end, tag, pid)."""
    if not log.exists():
        return []
    return [
        (kind, tag, int(pid)) for kind, tag, pid in map(str.split, log.read_text().split("\n")[:-1])
    ]


async def test_children_are_listed_by_name_and_sigterm_lets_their_jobs_finish(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    pool = start_pool(pools, tmp_path, "-P", "2", "-c", "1", "--shutdown-grace", "10")
    listed = await pool.wait_listed(2)
    assert list(listed) == [f"{pool.name}-1", f"{pool.name}-2"]
    assert {w.pid for w in listed.values()} == {pid for _, pid in pool.started()}
    assert pool.proc.pid not in {w.pid for w in listed.values()}
    # The supervisor is no worker: it takes no jobs and has no heartbeat of its own.
    assert pool.name not in {w.name for w in await naq.list_workers()}

    log = tmp_path / "runs.log"
    queue = Queue(Q)
    jobs = [await queue.enqueue(pool_jobs.mark_run, str(log), tag, 1.0) for tag in ("a", "b")]

    async def both_running() -> bool:
        infos = [await naq.get_job(job.job_id) for job in jobs]
        return all(info.status == naq.JobStatus.RUNNING for info in infos)

    await wait_until(both_running, timeout=10)
    pool.proc.send_signal(signal.SIGTERM)
    assert await pool.wait_exit() == 0, pool.output()
    # Both finished where they ran, and once: nothing was handed back for a rerun.
    assert [await naq.fetch_job_result(job.job_id) for job in jobs] == ["a", "b"]
    assert {pid for _, _, pid in marks(log)} <= {w.pid for w in listed.values()}
    assert Counter((kind, tag) for kind, tag, _ in marks(log)) == {
        ("start", "a"): 1,
        ("end", "a"): 1,
        ("start", "b"): 1,
        ("end", "b"): 1,
    }
    assert not any(alive(w.pid) for w in listed.values())
    assert not set(listed) & {w.name for w in await naq.list_workers()}
    assert "Traceback" not in pool.output()


async def test_a_killed_child_is_replaced_and_every_job_completes_once(
    pools: list[PoolProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The killed child's jobs come back after the ack wait: a short one keeps the test short.
    monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "1")
    pool = start_pool(pools, tmp_path, "-P", "2", "-c", "2")
    listed = await pool.wait_listed(2)
    victim = listed[f"{pool.name}-1"]
    log = tmp_path / "runs.log"
    tags = [f"job{i}" for i in range(40)]
    jobs = await Queue(Q).enqueue_many(
        [(pool_jobs.mark_run, (str(log), tag, 0.1), {}) for tag in tags]
    )

    def victim_mid_job() -> bool:
        runs = Counter((kind, tag) for kind, tag, pid in marks(log) if pid == victim.pid)
        return any(runs[("end", tag)] < count for (kind, tag), count in runs.items())

    await wait_until(victim_mid_job, timeout=10, interval=0.005)
    os.kill(victim.pid, signal.SIGKILL)
    # What the victim had started and not finished runs again elsewhere.
    victim_runs = Counter((kind, tag) for kind, tag, pid in marks(log) if pid == victim.pid)
    cut_short = sum(victim_runs[("start", t)] - victim_runs[("end", t)] for t in tags)
    assert cut_short >= 1

    async def replaced() -> WorkerInfo | None:
        workers = {w.name: w for w in await naq.list_workers()}
        new = workers.get(victim.name)
        return new if new is not None and new.pid != victim.pid else None

    replacement = await wait_until(replaced, timeout=15, interval=0.1)
    assert alive(replacement.pid)
    assert await asyncio.gather(*(job.result(timeout=75) for job in jobs)) == tags
    lines = marks(log)
    ends = Counter(tag for kind, tag, _ in lines if kind == "end")
    assert ends == dict.fromkeys(tags, 1)
    assert sum(1 for kind, _, _ in lines if kind == "start") == len(tags) + cut_short
    assert f"{victim.name} (pid {victim.pid}) killed by SIGKILL" in pool.output()
    assert f"in place of pid {victim.pid}" in pool.output()
    assert pool.proc.poll() is None


async def test_worker_stop_on_a_child_replaces_it_and_on_the_pool_name_stops_the_pool(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    pool = start_pool(pools, tmp_path, "-P", "2")
    listed = await pool.wait_listed(2)
    second = listed[f"{pool.name}-2"]
    result = await naq_cli("worker-stop", second.name)
    result.assert_ok(f"Worker {second.name} is stopping")

    async def replaced() -> bool:
        workers = {w.name: w for w in await naq.list_workers()}
        return second.name in workers and workers[second.name].pid != second.pid

    await wait_until(replaced, timeout=15, interval=0.1)
    assert f"{second.name} (pid {second.pid}) exited with code 0" in pool.output()

    await wait_until(lambda: "stops the whole pool" in pool.output(), timeout=15)
    # The pool's name starts both children's names: it is still the pool that is meant.
    result = await naq_cli("worker-stop", pool.name)
    result.assert_ok(f"Worker {pool.name} is stopping")
    assert await pool.wait_exit() == 0, pool.output()
    assert not any(alive(pid) for _, pid in pool.started())
    assert not {w.name for w in await naq.list_workers()} & {f"{pool.name}-1", second.name}


async def test_children_stop_on_their_own_when_the_supervisor_is_killed(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    pool = start_pool(pools, tmp_path, "-P", "2")
    listed = await pool.wait_listed(2)
    pool.proc.kill()
    await pool.wait_exit()
    await wait_until(lambda: not any(alive(w.pid) for w in listed.values()), timeout=10)
    # Stopped gracefully: each took its own record out of the workers bucket.
    assert not set(listed) & {w.name for w in await naq.list_workers()}
    assert pool.output().count("the pool's supervisor is gone, stopping") == 2


async def test_a_second_signal_kills_the_children_at_once(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    pool = start_pool(pools, tmp_path, "-P", "1", "-c", "1", "--shutdown-grace", "60")
    (child,) = (await pool.wait_listed(1)).values()
    job = await Queue(Q).enqueue(pool_jobs.mark_run, str(tmp_path / "runs.log"), "long", 60.0)

    async def running() -> bool:
        return (await naq.get_job(job.job_id)).status == naq.JobStatus.RUNNING

    await wait_until(running, timeout=10)
    pool.proc.send_signal(signal.SIGINT)
    await wait_until(lambda: "finishing running jobs" in pool.output(), timeout=10)
    started = time.monotonic()
    pool.proc.send_signal(signal.SIGINT)
    assert await pool.wait_exit() == 1, pool.output()
    assert time.monotonic() - started < 10
    assert not alive(child.pid)
    assert f"{child.name} (pid {child.pid}) killed by SIGKILL" in pool.output()


async def test_a_burst_pool_ends_once_its_children_emptied_the_queues(
    pools: list[PoolProcess], tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    tags = [f"job{i}" for i in range(10)]
    jobs = await Queue(Q).enqueue_many(
        [(pool_jobs.mark_run, (str(log), tag, 0.0), {}) for tag in tags]
    )
    pool = start_pool(pools, tmp_path, "-P", "2", "--burst")
    assert await pool.wait_exit() == 0, pool.output()
    assert [await naq.fetch_job_result(job.job_id) for job in jobs] == tags
    # Each child ended its burst with code 0, and none was started in its place.
    assert len(pool.started()) == 2
    assert pool.output().count("exited with code 0") == 2


@pytest.mark.timeout(120)
async def test_a_child_recycled_by_max_jobs_is_replaced_and_every_job_runs_once(
    pools: list[PoolProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default ack wait (30 s). A child asks for no job past its last (the worker's own
    # test checks the consumer delivered exactly max_jobs), and a job the server sends a
    # pull as the child stops goes back at once (tests/test_puller.py). What this one
    # checks is that every job runs, once, across the recycled children; the results may
    # take up to one ack wait, so that a job delayed some other way on a loaded machine
    # still shows whether it ran twice.
    log = tmp_path / "runs.log"
    tags = [f"job{i}" for i in range(20)]
    pool = start_pool(pools, tmp_path, "-P", "1", "-c", "2", "--max-jobs", "5")
    await pool.wait_listed(1)
    jobs = await Queue(Q).enqueue_many(
        [(pool_jobs.mark_run, (str(log), tag, 0.0), {}) for tag in tags]
    )
    assert await asyncio.gather(*(job.result(timeout=75) for job in jobs)) == tags
    lines = marks(log)
    assert Counter((kind, tag) for kind, tag, _ in lines) == {
        (kind, tag): 1 for tag in tags for kind in ("start", "end")
    }
    # Each child ran at most five of them and left with code 0; a fresh one took its place.
    by_pid = Counter(pid for kind, _, pid in lines if kind == "start")
    assert len(by_pid) >= 4 and max(by_pid.values()) <= 5, by_pid
    assert set(by_pid) <= {pid for _, pid in pool.started()}
    assert pool.output().count("exited with code 0") >= 3
    assert pool.proc.poll() is None


async def test_processes_below_one_is_one_clear_error() -> None:
    result = await naq_cli("worker", Q, "--processes", "0")
    result.assert_one_line_error("processes=0")


@pytest.mark.parametrize("processes", [0, -1, True, 1.5, "2"])
def test_run_pool_refuses_a_bad_number_of_processes(processes: object) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"processes={processes!r}")):
        run_pool(
            lambda name: ["true"],
            processes=processes,  # type: ignore[arg-type]
            name="p",
            shutdown_grace=1.0,
            settings=Settings(),
        )


# -- the children's command line --------------------------------------------------------------


def worker_context(*args: str) -> typer.Context:
    """`naq worker ARGS` parsed, not run."""
    command = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    return command.make_context("worker", list(args))  # type: ignore[no-any-return]


def test_a_child_gets_the_options_given_less_processes_and_a_name_of_its_own() -> None:
    given = [
        *("q1", "q2", "-u", "nats://h:4222", "-c", "3", "-n", "web", "-l", "debug"),
        *("--burst", "-m", "pkg.a", "-m", "pkg.b", "--allowed-modules", "pkg"),
        *("--shutdown-grace", "2.5", "-P", "3", "--app", "app.workers:worker"),
        *("--lifespan", "app:lifespan", "--middleware", "app:A", "--middleware", "app:B"),
        *("--max-jobs", "5", "--max-memory", "256.5", "--fair"),
    ]
    argv = pool_child_argv(worker_context(*given))("web-2")
    assert argv[:4] == [sys.executable, "-m", "naq", "worker"]
    child = worker_context(*argv[4:])
    expected = dict(worker_context(*given).params, name="web-2", processes=None)
    assert child.params == expected
    assert "-P" not in argv and not any(word.startswith("--processes") for word in argv)


def test_options_left_at_their_defaults_are_not_passed_on() -> None:
    argv = pool_child_argv(worker_context("q1", "-P", "2"))("h-1-1")
    assert argv == [sys.executable, "-m", "naq", "worker", "--name=h-1-1", "--", "q1"]
    argv = pool_child_argv(worker_context("--app", "app:w", "-P", "2"))("h-1-2")
    assert argv == [sys.executable, "-m", "naq", "worker", "--app=app:w", "--name=h-1-2"]


# -- replacement's pace, exits, the supervisor watch --------------------------------------------


def test_backoff_doubles_while_children_die_young_and_restarts_after_a_long_life() -> None:
    backoff = Backoff()
    delays = [backoff.after_crash(0.1) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert delays[0] == FIRST_BACKOFF and delays[-1] == MAX_BACKOFF
    assert backoff.after_crash(STEADY_LIFE) == FIRST_BACKOFF
    assert backoff.after_crash(1.0) == 2 * FIRST_BACKOFF
    backoff.reset()
    assert backoff.after_crash(1.0) == FIRST_BACKOFF


def test_an_exit_is_told_by_its_code_or_its_signal() -> None:
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"


class StubWorker:
    """What watch_supervisor uses of a worker: its name, status and request_stop."""

    name = "stub"
    status = naq.WorkerStatus.IDLE

    def __init__(self) -> None:
        self.stop_requested = threading.Event()

    def request_stop(self) -> None:
        self.stop_requested.set()


def test_a_child_is_asked_to_stop_once_its_supervisors_pipe_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    try:
        monkeypatch.setenv(PARENT_FD_ENV, str(read_end))
        worker = StubWorker()
        watch_supervisor(worker)  # type: ignore[arg-type]
        # The variable is not passed on to what the worker's jobs start.
        assert PARENT_FD_ENV not in os.environ
        assert not worker.stop_requested.wait(0.2)
        os.close(write_end)
        write_end = -1
        assert worker.stop_requested.wait(5)
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)


def test_no_watch_without_a_supervisors_pipe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = StubWorker()
    monkeypatch.delenv(PARENT_FD_ENV, raising=False)
    watch_supervisor(worker)  # type: ignore[arg-type]
    with open(tmp_path / "file", "w") as not_a_pipe:
        monkeypatch.setenv(PARENT_FD_ENV, str(not_a_pipe.fileno()))
        watch_supervisor(worker)  # type: ignore[arg-type]
    assert "is no pipe" in caplog.text
    assert not worker.stop_requested.wait(0.2)
