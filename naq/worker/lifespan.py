"""A worker's lifespan: what an application sets up once per worker process.

``Worker(lifespan=fn)``: ``fn(worker)`` returns a context manager (async, as
``contextlib.asynccontextmanager`` makes, or plain). It is entered before the worker
takes its first job and left after its last job has ended on shutdown; the mapping it
yields (a database pool, an HTTP client) is the worker's state, which jobs, middleware
and callbacks read with :func:`worker_state`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from naq.context import current_job
from naq.errors import ConfigurationError, NaqException, WorkerStartupError

log = logging.getLogger("naq.worker")

#: The state of the worker whose run the current code is part of (its hooks' and
#: callbacks' tasks inherit it; a job finds it on its context too).
_state: ContextVar[dict[str, Any] | None] = ContextVar("naq_worker_state", default=None)


def worker_state() -> dict[str, Any]:
    """What the running worker's lifespan yielded (an empty dict if it has none).

    Works in async and sync jobs, middleware hooks and callbacks.

    Raises:
        NaqException: called outside a worker.
    """
    job = current_job()
    if job is not None:
        return job.state
    state = _state.get()
    if state is None:
        raise NaqException("naq.worker_state() is only available inside a worker's jobs and hooks")
    return state


def bind_state(state: dict[str, Any]) -> Token[dict[str, Any] | None]:
    """Make ``state`` the current worker's (tasks created from here on inherit it)."""
    return _state.set(state)


def unbind_state(token: Token[dict[str, Any] | None]) -> None:
    """Undo :func:`bind_state` once the worker's run is over."""
    _state.reset(token)


def describe(func: Any) -> str:
    """``module:name`` of a lifespan or hook, for messages."""
    module = getattr(func, "__module__", None) or type(func).__module__
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}:{name}"


class Lifespan:
    """One worker run's lifespan: entered once, left once."""

    def __init__(self, factory: Callable[[Any], Any] | None, worker: Any) -> None:
        self._factory = factory
        self._worker = worker
        self._manager: Any = None
        self._is_async = False

    async def enter(self) -> dict[str, Any]:
        """Enter the lifespan and return the state it yields (a fresh dict without one).

        Raises:
            WorkerStartupError: the lifespan raised on entry, or is not a context manager
                yielding a mapping (named in the message).
        """
        if self._factory is None:
            return {}
        name = describe(self._factory)
        try:
            manager = self._factory(self._worker)
            if hasattr(manager, "__aenter__"):
                self._is_async = True
                value = await manager.__aenter__()
            elif hasattr(manager, "__enter__"):
                value = manager.__enter__()
            else:
                raise ConfigurationError(
                    f"returned {type(manager).__name__}, not a context manager "
                    "(decorate it with contextlib.asynccontextmanager)"
                )
        except Exception as exc:
            raise WorkerStartupError(
                f"lifespan {name} failed on entry: {type(exc).__name__}: {exc}"
            ) from exc
        self._manager = manager
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            await self.exit()
            raise WorkerStartupError(
                f"lifespan {name} yielded {type(value).__name__}, not a mapping (yield a dict)"
            )
        return value if isinstance(value, dict) else dict(value)

    async def exit(self) -> None:
        """Leave the lifespan (an error on the way out is logged: the worker stops anyway)."""
        manager, self._manager = self._manager, None
        if manager is None:
            return
        try:
            if self._is_async:
                await manager.__aexit__(None, None, None)
            else:
                manager.__exit__(None, None, None)
        except Exception:
            log.exception("lifespan %s failed on exit", describe(self._factory))
