"""How a command runs: its coroutine on a fresh event loop, its logging level and settings,
and every naq error turned into one clear line on stderr and a non-zero exit (never a
traceback)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from naq.errors import NaqException
from naq.log_level import choose_level, configure_logging
from naq.settings import Settings, get_settings
from naq.stop_signals import install_stop_signals, remove_stop_signals

T = TypeVar("T")

# Soft wrap: a message naming a long id or worker name is never broken by a hard line end.
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the one error line and return the exit to raise."""
    # The message as plain text: a value it names may hold brackets rich would read as markup.
    err_console.print(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(code)


async def _then_close(coro: Coroutine[Any, Any, T]) -> T:
    # Closed before the event loop is: on Python 3.10 a TLS connection still open when the
    # loop closes logs a traceback from its transport.
    from naq.transport import close_connections

    try:
        return await coro
    finally:
        await close_connections()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine (closing its connections), turning naq errors into one line."""
    try:
        return asyncio.run(_then_close(coro))
    except (NaqException, CliError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def until_signal(coro: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived command's coroutine until it ends, or SIGINT/SIGTERM cancels it
    (then exit 130 or 143, as the shell reports a process ended by that signal).

    The signal cancels the command's task from the event loop, so its clean-up (closing
    servers and connections) runs whole: a KeyboardInterrupt raised inside whatever
    callback the signal happened to interrupt could leave a connection half closed.
    """
    task = asyncio.ensure_future(coro)
    received: list[int] = []

    def stop(sig: int) -> None:
        received.append(sig)
        task.cancel()

    install_stop_signals(stop)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise typer.Exit(128 + received[0]) from None
        raise
    finally:
        remove_stop_signals()


def guarded(func: Callable[..., T]) -> Callable[..., T]:
    """Turn naq errors raised outside ``run`` (e.g. while building objects) into one line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except NaqException as exc:
            raise fail(str(exc)) from None

    return wrapper


def setup_logging(flag: str | None, default: str, handler: logging.Handler | None = None) -> None:
    """Log at the level of ``--log-level``, else ``NAQ_LOG_LEVEL``, else ``default``."""
    try:
        level = choose_level(flag, get_settings().log_level, default)
    except NaqException as exc:
        raise fail(str(exc)) from None
    configure_logging(level, handler)


def setup_tui_logging() -> None:
    """Log to the TUI's own log (``textual console``): records would scribble over the screen.

    Unless ``NAQ_LOG_LEVEL`` says otherwise, only critical records.
    """
    from textual.logging import TextualHandler

    setup_logging(None, "CRITICAL", TextualHandler())


def settings_for(nats_url: str | None) -> Settings:
    """Settings from the environment with ``--nats-url`` applied."""
    try:
        return get_settings().replace(nats_url=nats_url)
    except NaqException as exc:
        raise fail(str(exc)) from None
