"""A worker's middleware, compiled once a run: which hooks each has, called in order.

Only the hooks a middleware has (and does not inherit empty from
:class:`naq.middleware.Middleware`) are kept, so a worker without middleware pays
nothing per job and one with a single ``after_job`` pays for one call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from naq.context import JobContext
from naq.errors import ConfigurationError
from naq.middleware import HOOKS, JobOutcome, Middleware
from naq.worker.execution import expired

log = logging.getLogger("naq.worker")

#: A hook bound to its middleware, with the name it is logged under.
Hook = tuple[str, Callable[..., Any]]


def check_middleware(middleware: Sequence[object]) -> list[object]:
    """The middleware list, each item checked to have at least one hook.

    Raises:
        ConfigurationError: an item has none of the hooks (named in the message).
    """
    items = list(middleware)
    for item in items:
        if not _hooks_of(item):
            raise ConfigurationError(
                f"middleware {item!r} has none of the hooks {', '.join(HOOKS)} "
                "(pass an instance; a class is instantiated by the CLI's --middleware)"
            )
    return items


def _hooks_of(item: object) -> dict[str, Callable[..., Any]]:
    found = {}
    for name in HOOKS:
        method = getattr(item, name, None)
        if method is None or not callable(method):
            continue
        if getattr(type(item), name, None) is getattr(Middleware, name):
            continue  # the base class's empty hook
        found[name] = method
    return found


async def _call(method: Callable[..., Any], *args: Any) -> Any:
    value = method(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


class Hooks:
    """The hooks of a worker's middleware, in the order each runs."""

    def __init__(self, middleware: Sequence[object]) -> None:
        compiled = [(type(item).__name__, _hooks_of(item)) for item in middleware]

        def chain(name: str, reverse: bool = False) -> list[Hook]:
            hooks = [(f"{label}.{name}", found[name]) for label, found in compiled if name in found]
            return hooks[::-1] if reverse else hooks

        self.before = chain("before_job")
        self._after = chain("after_job", reverse=True)
        self._retry = chain("on_retry")
        self._failure = chain("on_failure")
        self._start = chain("on_worker_start")
        self._stop = chain("on_worker_stop", reverse=True)
        #: Whether anything runs after an attempt (else the attempt skips building an outcome).
        self.after_any = bool(self._after or self._retry or self._failure)

    async def run_before(self, job: JobContext, timeout: float | None) -> float | None:
        """Run the ``before_job`` hooks; returns what is left of ``timeout`` for the function.

        Raises:
            Exception: what a hook raised (it fails the attempt).
            JobTimeout: the hooks used up the job's timeout.
        """
        if timeout is None:
            for _, hook in self.before:
                await _call(hook, job)
            return None
        deadline = time.monotonic() + timeout
        for _, hook in self.before:
            value = hook(job)
            if inspect.isawaitable(value):
                # A task of its own (as wait_for makes), to tell the hook's own TimeoutError
                # from the budget running out: only the latter cancels it.
                task = asyncio.ensure_future(value)
                try:
                    await asyncio.wait_for(task, max(deadline - time.monotonic(), 0))
                except asyncio.TimeoutError:
                    if not task.cancelled():
                        raise
                    raise expired(timeout) from None
        left = deadline - time.monotonic()
        if left <= 0:
            raise expired(timeout)  # a sync hook can't be interrupted: checked once it returns
        return left

    async def attempt_ended(self, job: JobContext, outcome: JobOutcome) -> None:
        """Run ``on_retry`` or ``on_failure`` as the outcome says, then ``after_job``."""
        error = outcome.error
        if error is not None and outcome.status == "failed":
            for name, hook in self._retry if outcome.will_retry else self._failure:
                await self._guarded(name, hook, job, error)
        for name, hook in self._after:
            await self._guarded(name, hook, job, outcome)

    async def worker_started(self, worker: Any) -> None:
        """Run ``on_worker_start``."""
        for name, hook in self._start:
            await self._guarded(name, hook, worker)

    async def worker_stopped(self, worker: Any) -> None:
        """Run ``on_worker_stop``."""
        for name, hook in self._stop:
            await self._guarded(name, hook, worker)

    @staticmethod
    async def _guarded(name: str, hook: Callable[..., Any], *args: Any) -> None:
        try:
            await _call(hook, *args)
        except Exception:
            log.exception("middleware hook %s failed (the job's outcome stands)", name)
