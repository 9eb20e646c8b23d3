"""Operator actions on jobs and workers: cancel a job, stop a worker."""

from __future__ import annotations

from naq.broker import Broker
from naq.errors import NaqConnectionError
from naq.results import resolve_settings
from naq.settings import Settings
from naq.sync import sync_twin


async def stop_worker(
    name: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Ask worker ``name`` to stop gracefully (as SIGTERM would).

    Returns True once the worker acknowledged; False if no worker by that name answered.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    try:
        reply = await broker.connection.request(
            broker.names.worker_control_subject(name), b"stop", timeout=3
        )
    except NaqConnectionError:
        if broker.connection.is_connected:
            return False  # no responders / no answer: no such worker
        raise
    return reply.data == b"stopping"


stop_worker_sync = sync_twin(stop_worker)
