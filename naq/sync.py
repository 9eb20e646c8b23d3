"""Running naq's async core from synchronous code.

Every ``*_sync`` helper is made by :func:`sync_twin` from its async form and
submits that coroutine to one background event loop owned by naq, running in
a daemon thread. The loop and its shared NATS connection live for the whole
process, so sync helpers work any number of times in a row, from any thread,
and from code that runs inside another event loop (which they block while they
wait, like any sync call).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _ensure_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="naq-sync-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on naq's background loop and return its result (or raise its error).

    Raises:
        RuntimeError: called from a coroutine running on naq's own loop, which
            would deadlock; call the async form there.
    """
    loop = _ensure_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("naq *_sync helpers can't run on naq's own loop: await the async form")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise


def sync_twin(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of coroutine function ``fn``: same parameters, same result.

    The twin is named ``<name>_sync``, reports ``fn``'s signature to ``inspect``
    and documents itself as the blocking form of ``fn``. Used as a class attribute
    (``stats_sync = sync_twin(stats)``) it is a method like ``fn``.
    """

    @functools.wraps(fn)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(fn(*args, **kwargs))

    twin.__name__ = f"{fn.__name__}_sync"
    twin.__qualname__ = f"{fn.__qualname__}_sync"
    role = "meth" if "." in fn.__qualname__ else "func"
    twin.__doc__ = f"Blocking form of :{role}:`{fn.__name__}`."
    return twin


def set_threadsafe(event: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
    """Set ``event`` (which belongs to ``loop``) from any thread, waking the loop."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(event.set)


def close_sync_connections(timeout: float = 5.0) -> None:
    """Close the NATS connections of naq's background loop: the ones the ``*_sync``
    helpers share (pipelined publishes are flushed first).

    Harmless when there are none (before any sync helper ran, or called twice); the next
    sync helper connects again. Connections of other event loops are left alone.

    Raises:
        RuntimeError: called from a coroutine running on naq's own loop (await
            ``naq.disconnect()`` there).
    """
    with _lock:
        loop, thread = _loop, _thread
    if loop is None or loop.is_closed() or thread is None or not thread.is_alive():
        return
    if threading.current_thread() is thread:
        raise RuntimeError("close_sync_connections can't run on naq's own loop: await disconnect()")
    from naq.transport import close_connections

    asyncio.run_coroutine_threadsafe(close_connections(), loop).result(timeout)


def _shutdown() -> None:
    # Flush pipelined publishes and close connections before the interpreter exits.
    loop = _loop
    if loop is None or loop.is_closed() or _thread is None or not _thread.is_alive():
        return
    try:
        close_sync_connections()
    except Exception:  # noqa: S110 - best effort at exit
        pass
    loop.call_soon_threadsafe(loop.stop)


atexit.register(_shutdown)
