"""SIGTERM and SIGINT as a long-running process's request to stop, handled on its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable

#: The signals that ask a process to stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_signals(handler: Callable[[int], None]) -> None:
    """Have the running loop call ``handler(signal number)`` on SIGTERM and SIGINT.

    Only the main thread can take signals: elsewhere (a worker run in a thread) nothing is
    installed, nor where the loop can't take them (Windows' default loop).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler, sig)


def remove_stop_signals() -> None:
    """Give SIGTERM and SIGINT back to their default handling."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
