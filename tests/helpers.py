"""Helpers shared by the integration tests: in-process workers, dead-letter reading, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

import naq
from naq.models import DeadLetter, dead_letter_decoder


def prefix() -> str:
    """This test's ``NAQ_PREFIX`` (set by the autouse ``naq_env`` fixture)."""
    return os.environ["NAQ_PREFIX"]


async def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    Only for conditions nothing can be awaited for (a subprocess appearing, a local flag).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running_worker(queues: Any, **options: Any) -> AsyncIterator[naq.Worker]:
    """Run a :class:`naq.Worker` as a task of this loop until the block ends.

    Yields once the worker is taking jobs (status left ``starting``).
    """
    options.setdefault("install_signal_handlers", False)
    options.setdefault("shutdown_grace", 2.0)
    worker = naq.Worker(queues, **options)
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: task.done() or worker.status != naq.WorkerStatus.STARTING)
        if task.done():
            task.result()  # raise the start-up error
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


class ThreadWorker:
    """A :class:`naq.Worker` running on its own event loop in a background thread."""

    def __init__(self, queues: Any, **options: Any) -> None:
        options.setdefault("install_signal_handlers", False)
        options.setdefault("shutdown_grace", 2.0)
        self.worker = naq.Worker(queues, **options)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.worker.run())
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            self.loop.close()

    def start(self) -> ThreadWorker:
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.worker.status == naq.WorkerStatus.STARTING and self.thread.is_alive():
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.02)
        assert self.thread.is_alive(), f"worker died at start: {self.error!r}"
        return self

    def stop(self) -> None:
        # asyncio objects are not thread-safe: ask the worker's own loop to stop it.
        if self.thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.worker.request_stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), "worker thread did not stop"
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def thread_worker(queues: Any, **options: Any) -> Iterator[naq.Worker]:
    """Run a worker in a background thread for the duration of the block."""
    runner = ThreadWorker(queues, **options).start()
    try:
        yield runner.worker
    finally:
        runner.stop()


async def read_dead_letters(nats_url: str, queue: str) -> list[DeadLetter]:
    """Every dead letter of ``queue`` in this test's failed stream, read with plain nats-py."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = f"{prefix()}_failed_jobs"
        subject = f"{prefix()}.failed.{queue}"
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []
        letters = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg(stream, seq)
            if msg.subject == subject:
                letters.append(dead_letter_decoder.decode(msg.data or b""))
        return letters
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def dead_letter_subscription(nats_url: str, queue: str) -> AsyncIterator[Any]:
    """A core-NATS subscription to ``queue``'s dead-letter subject (see each letter as it lands)."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.subscribe(f"{prefix()}.failed.{queue}")
        await nc.flush()
        yield sub
    finally:
        await nc.close()


async def next_dead_letter(sub: Any, timeout: float = 10.0) -> DeadLetter:
    """The next dead letter on a :func:`dead_letter_subscription`."""
    msg = await sub.next_msg(timeout=timeout)
    return dead_letter_decoder.decode(msg.data)


REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """What one ``python -m naq`` run printed and returned."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The output parsed as JSON (after checking the run succeeded)."""
        assert self.code == 0, self
        assert "Traceback" not in self.err, self
        return json.loads(self.out)

    def ids(self) -> list[str]:
        """The job ids of a JSON listing, sorted."""
        data = self.json()
        assert isinstance(data, list)
        return sorted(item["job_id"] for item in data)

    def assert_ok(self, *texts: str) -> None:
        assert self.code == 0, self
        assert "Traceback" not in self.out + self.err, self
        for text in texts:
            assert text in self.out, (text, self)

    def assert_one_line_error(self, *names: str) -> None:
        """Non-zero exit, exactly one line on stderr naming each of ``names``, no traceback."""
        assert self.code != 0, self
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self
        assert "Traceback" not in self.err + self.out, self
        for name in names:
            assert name in lines[0], (name, self)


async def naq_cli(*args: str, env: Mapping[str, str] | None = None) -> Result:
    """Run ``python -m naq ARGS``: with exactly ``env`` if given, else with the test's own
    environment (which holds NAQ_PREFIX and NAQ_NATS_URL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "naq",
        *args,
        cwd=REPO_ROOT,
        env=dict(env) if env is not None else dict(os.environ, COLUMNS="200"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return Result(args, proc.returncode, out.decode(), err.decode())


async def cli_all(*calls: tuple[str, ...]) -> list[Result]:
    """Run several CLI commands at once."""
    return list(await asyncio.gather(*(naq_cli(*call) for call in calls)))


def start_process(tmp_path: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m naq ARGS`` with this test's environment, output in ``tmp_path/name.log``."""
    with open(tmp_path / f"{name}.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "naq", *args],
            cwd=REPO_ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class StatusWatch:
    """``naq.watch_jobs`` consumed by a background task, live before the block's body runs.

    The watch's subscription only starts at the iterator's first step, so entering the block
    starts the pump and waits (bounded) until its consumer exists on the status bucket's stream;
    every status change after that is seen.
    """

    def __init__(self, nats_url: str, queue: str | None = None) -> None:
        self.nats_url = nats_url
        self.queue = queue
        self.events: list[naq.JobEvent] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        async for event in naq.watch_jobs(self.queue):
            self.events.append(event)
            self._changed.set()

    async def __aenter__(self) -> StatusWatch:
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            stream = f"KV_{prefix()}_job_status"

            async def consumers() -> int:
                try:
                    return (await js.stream_info(stream)).state.consumer_count
                except nats.js.errors.NotFoundError:
                    return 0

            before = await consumers()
            self._task = asyncio.create_task(self._pump())
            task = self._task

            async def live() -> bool:
                return task.done() or await consumers() > before

            await wait_until(live, timeout=10, interval=0.01)
            if task.done():
                task.result()  # the watch failed to start: raise why
        finally:
            await nc.close()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def until(
        self, match: Callable[[naq.JobEvent], bool], timeout: float = 10.0
    ) -> naq.JobEvent:
        """The first event (seen so far or to come) that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching job event within {timeout}s: {self.events}")
            assert self._task is not None
            if self._task.done():
                self._task.result()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def status(self, job_id: str, status: str, timeout: float = 10.0) -> naq.JobEvent:
        """Wait for ``job_id`` to reach ``status``."""
        return await self.until(lambda e: e.job_id == job_id and e.status == status, timeout)


async def assert_never_runs(job_id: str, within: float) -> None:
    """No status of ``job_id`` appears for ``within`` seconds, and naq, which has no record
    of it, refuses to wait for it.

    A non-event: only time passing can show it, so this watches for that long.
    """
    async with StatusWatch(os.environ["NAQ_NATS_URL"]) as watch:
        with pytest.raises(AssertionError, match="no matching job event"):
            await watch.until(lambda event: event.job_id == job_id, timeout=within)
    with pytest.raises(naq.JobNotFoundError, match=job_id):
        await naq.wait_for_job(job_id, timeout=within)


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, SIGKILL it if it has not exited after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
