"""Operator actions on jobs and workers: cancel a job, stop a worker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from naq.broker import Broker
from naq.errors import NaqConnectionError
from naq.results import resolve_settings
from naq.settings import Settings
from naq.sync import sync_twin
from naq.transport import Msg

#: The remote-control protocol of a worker (or a pool): the command, and its answer.
STOP = b"stop"
STOPPING = b"stopping"


async def answer_control(msg: Msg, stop: Callable[[], None]) -> None:
    """Answer a control message sent to a worker's (or pool's) subject: ``stop`` calls
    ``stop()`` and answers ``stopping``; anything else is answered as unknown."""
    command = msg.data.strip()
    if command == STOP:
        stop()
        reply = STOPPING
    else:
        reply = f"unknown command {command.decode(errors='replace')!r}".encode()
    if msg.reply:
        with contextlib.suppress(Exception):
            await msg.respond(reply)


async def stop_worker(
    name: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Ask worker ``name`` to stop gracefully (as SIGTERM would).

    Returns True once the worker acknowledged; False if no worker by that name answered.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    try:
        reply = await broker.connection.request(
            broker.names.worker_control_subject(name), STOP, timeout=3
        )
    except NaqConnectionError:
        if broker.connection.is_connected:
            return False  # no responders / no answer: no such worker
        raise
    return reply.data == STOPPING


stop_worker_sync = sync_twin(stop_worker)
