"""Running one job's function: on the event loop if async, in a thread if sync,
with its timeout enforced either way."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class JobTimeout(Exception):
    """The job ran longer than its ``timeout``."""


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
            Exception: whatever the function raised.
        """
        if inspect.iscoroutinefunction(func):
            return await self._await(func(*args, **kwargs), timeout)
        pool = self._pool
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(pool, call)
        try:
            value = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            if pool is self._pool:
                self._pool = self._new_pool()
                pool.shutdown(wait=False)
            raise JobTimeout(f"job exceeded its timeout of {timeout:g}s") from None
        if inspect.isawaitable(value):
            return await self._await(value, timeout)
        return value

    @staticmethod
    async def _await(awaitable: Any, timeout: float | None) -> Any:
        if timeout is None:
            # Awaited in place: no timeout to enforce, so no wrapper on every job's path.
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            raise JobTimeout(f"job exceeded its timeout of {timeout:g}s") from None

    def shutdown(self) -> None:
        """Stop taking sync jobs; running threads finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
