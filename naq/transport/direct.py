"""Subscriptions whose messages go straight from nats-py's read loop to a function.

A nats-py subscription with a callback queues each message and runs the callback
from a task of its own: a queue put, a task wake-up and a coroutine per message.
On a worker's pull replies and publish acks that is a sixth of what a job costs,
and a turn of the event loop added to every job's start. :func:`subscribe_direct`
replaces the subscription's queue with a stand-in that calls a plain function as
each message is parsed. The function must be quick and must not block; what it
raises is logged, never passed to the connection.

A subscription without the internals this relies on, or one asked to be plain
(``NAQ_PLAIN_CLIENT=1``), gets an ordinary callback: same messages, same handling of
what the function raises, nats-py's speed. ``pyproject.toml`` bounds nats-py to the
releases this was checked on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("naq.direct")


def _hand_on(handler: Callable[[Any], None], msg: Any) -> None:
    try:
        handler(msg)
    except Exception:
        log.exception("handling a message on %s failed", msg.subject)


class _Handoff:
    """Takes the place of a subscription's message queue; hands each message on at once."""

    def __init__(self, handler: Callable[[Any], None]) -> None:
        self._handler = handler

    def put_nowait(self, msg: Any) -> None:
        _hand_on(self._handler, msg)

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def task_done(self) -> None:
        return None

    async def join(self) -> None:
        return None

    async def get(self) -> Any:
        # Nothing is ever queued here.
        await asyncio.get_running_loop().create_future()


def _has_internals(sub: Any) -> bool:
    """Whether nats-py subscription ``sub`` has the message queue the direct path replaces."""
    queue = getattr(sub, "_pending_queue", None)
    return isinstance(queue, asyncio.Queue) and hasattr(sub, "_pending_bytes_limit")


def is_direct(sub: Any) -> bool:
    """Whether ``sub`` hands its messages on directly (rather than through a callback task)."""
    return isinstance(getattr(sub, "_pending_queue", None), _Handoff)


async def subscribe_direct(
    client: Any, subject: str, handler: Callable[[Any], None], plain: bool = False
) -> Any:
    """Subscribe ``client`` to ``subject``, calling ``handler(msg)`` as each message arrives.

    ``plain``: keep nats-py's own callback task (the direct path is off).
    Returns the nats-py subscription (unsubscribe it as usual).
    """

    async def callback(msg: Any) -> None:
        _hand_on(handler, msg)

    sub = await client.subscribe(subject, cb=callback)
    if plain or not _has_internals(sub):
        return sub
    queue = sub._pending_queue
    # Nothing waits in a queue, so no byte limit applies (the client's count of queued
    # bytes only grows; 0 turns its slow-consumer check off).
    sub._pending_bytes_limit = 0
    sub._pending_queue = _Handoff(handler)
    # Whatever arrived before the swap is still in the old queue: hand it on too.
    while not queue.empty():
        sub._pending_queue.put_nowait(queue.get_nowait())
    return sub
