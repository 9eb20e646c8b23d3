"""Helpers shared by the integration tests: in-process workers, dead-letter reading, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import nats

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
