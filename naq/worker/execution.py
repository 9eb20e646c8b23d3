"""Running one job's function: on the event loop if async, in a thread if sync,
with its timeout enforced either way."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class JobTimeout(Exception):
    """The job ran longer than its ``timeout``."""


def expired(timeout: float) -> JobTimeout:
    """The error of a job that ran past ``timeout`` seconds."""
    return JobTimeout(f"job exceeded its timeout of {timeout:g}s")


class _Completions:
    """Hands sync jobs' outcomes from their threads back to the event loop in batches.

    ``run_in_executor`` wakes the loop once per finished call; a worker finishing
    thousands of short sync jobs a second spends more on those wake-ups than on the
    jobs. Here a finished call joins a queue, and only the first one since the loop
    last emptied it wakes the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done: collections.deque[tuple[asyncio.Future[Any], bool, Any]] = collections.deque()
        self._woken = False

    def call(
        self,
        future: asyncio.Future[Any],
        context: contextvars.Context,
        func: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> None:
        """Run ``func`` (in a pool thread) and queue its outcome for ``future``."""
        try:
            outcome = (future, True, context.run(func, *args, **kwargs))
        except BaseException as exc:  # handed to the job's coroutine, which decides
            outcome = (future, False, exc)
        self._done.append(outcome)
        if not self._woken:
            self._woken = True
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for this outcome any more

    def _deliver(self) -> None:
        # Cleared first: an outcome queued from now on wakes the loop again.
        self._woken = False
        done = self._done
        while done:
            future, ok, value = done.popleft()
            if future.done():
                continue  # timed out or cancelled meanwhile: the outcome is discarded
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class Executor:
    """Runs job functions for one worker.

    Sync functions run in a thread pool sized to the worker's concurrency.
    A thread can't be stopped from outside, so when a sync job times out its
    thread is abandoned to finish alone and a fresh pool takes its place: the
    worker's slot is free at once and later jobs never queue behind it.
    """

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._pool = self._new_pool()
        self._completions: _Completions | None = None

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="naq-job")

    async def run(
        self,
        func: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        """Call ``func(*args, **kwargs)`` and return its value.

        Raises:
            JobTimeout: it did not return within ``timeout`` seconds.
            Exception: whatever the function raised (a ``TimeoutError`` of its own included:
                only the expiry of ``timeout`` is a :class:`JobTimeout`).
        """
        if inspect.iscoroutinefunction(func):
            return await self._await(func(*args, **kwargs), timeout)
        loop = asyncio.get_running_loop()
        if self._completions is None:
            self._completions = _Completions(loop)
        pool = self._pool
        future: asyncio.Future[Any] = loop.create_future()
        pool.submit(self._completions.call, future, contextvars.copy_context(), func, args, kwargs)
        if timeout is None:
            value = await future
        else:
            try:
                value = await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                # On 3.11+ a function's own TimeoutError is this class too; only an expired
                # wait cancels the future.
                if not future.cancelled():
                    raise
                if pool is self._pool:
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False)
                raise expired(timeout) from None
        if inspect.isawaitable(value):
            return await self._await(value, timeout)
        return value

    @staticmethod
    async def _await(awaitable: Any, timeout: float | None) -> Any:
        if timeout is None:
            # Awaited in place: no timeout to enforce, so no wrapper on every job's path.
            return await awaitable
        # A task of its own (wait_for would make one anyway), to tell its own TimeoutError
        # from the expiry of the wait: only the expiry cancels it.
        task = asyncio.ensure_future(awaitable)
        try:
            return await asyncio.wait_for(task, timeout)
        except asyncio.TimeoutError:
            if not task.cancelled():
                raise
            raise expired(timeout) from None

    def shutdown(self) -> None:
        """Stop taking sync jobs; running threads finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
