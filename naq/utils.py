"""Helpers for programs that use naq: running its coroutines from sync code, logging.

``run_async_from_sync`` is the mechanism of every ``*_sync`` helper (:mod:`naq.sync`),
and ``setup_logging`` follows the rule of every naq command (:mod:`naq.log_level`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from naq.log_level import LIBRARY_DEFAULT, choose_level, configure_logging
from naq.settings import get_settings
from naq.sync import run_sync

T = TypeVar("T")


def run_async_from_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` to completion from synchronous code and return its result (or raise
    its error); ``timeout`` seconds at most (None: no limit).

    It runs on naq's background event loop, the one the ``*_sync`` helpers share (with
    its NATS connections), so it works any number of times in a row, from any thread,
    and from code running inside another event loop (whose thread it blocks meanwhile,
    like any sync call; a coroutine there should ``await`` instead). ``coro`` must not
    need that other loop.

    Raises:
        TypeError: ``coro`` is not a coroutine (``f`` given for ``f(...)``).
        RuntimeError: called from a coroutine on naq's background loop itself.
        TimeoutError: ``timeout`` passed first (``coro`` is then cancelled).
    """
    if not asyncio.iscoroutine(coro):
        raise TypeError(
            f"run_async_from_sync needs a coroutine, got {coro!r}: call the async function"
        )
    return run_sync(coro, timeout)


def setup_logging(level: str | None = None) -> None:
    """Log naq's (and the program's) records to stderr at ``level`` (``"DEBUG"`` to
    ``"CRITICAL"``, any case), else at ``NAQ_LOG_LEVEL``, else at INFO.

    Called again, it replaces the handler it installed before (and nothing else).

    Raises:
        ConfigurationError: ``level`` or ``NAQ_LOG_LEVEL`` is not a log level (named).
    """
    configure_logging(
        choose_level(level, get_settings().log_level, LIBRARY_DEFAULT, flag_source="level")
    )


__all__ = ["run_async_from_sync", "setup_logging"]
