"""nats-py's client and JetStream context of naq's shared connection, handed to user code.

These are the connection functions under their original names (``naq.connection``
shows them): code that wants NATS itself (publish, subscribe, its own streams) gets the
very connection naq uses on that event loop instead of opening another one.

**Leases.** :func:`get_nats_connection` (and :func:`get_jetstream_context` without a
client) takes a lease on the loop's shared connection; :func:`close_nats_connection`
gives one back. The connection is closed when its last lease is given back *and*
nothing else uses it: no ``naq.connect()`` (which keeps it until ``naq.disconnect()``)
and no Queue or helper call of naq's still on it. Otherwise it stays open as the loop's
shared connection, closed by ``naq.disconnect()`` (which closes it whatever the leases).
So closing never breaks another user of the connection; don't call ``close()`` or
``drain()`` on the client yourself, for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from naq.errors import ConfigurationError
from naq.names import Names
from naq.settings import Settings, get_settings
from naq.transport.connection import (
    get_connection,
    lease_connection,
    release_connection,
    shared_connection_of,
)
from naq.transport.resources import Resources, jobs_stream_config

#: What JetStream accepts in a stream name (naq's own names are of this form).
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _settings_for(url: str | None) -> Settings:
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise ConfigurationError(f"url={url!r} must be a NATS URL such as nats://localhost:4222")
    return get_settings().replace(nats_url=url)


async def get_nats_connection(url: str | None = None) -> NATS:
    """This event loop's shared connection to ``url`` (default ``NAQ_NATS_URL``) as its
    nats-py client, with a lease taken on it (module docstring): give it back with
    :func:`close_nats_connection` (same ``url``).

    Raises:
        NaqConnectionError: NATS can't be reached.
        ConfigurationError: ``url`` is not a URL.
    """
    return (await lease_connection(_settings_for(url))).nc


async def get_jetstream_context(nc: NATS | None = None) -> JetStreamContext:
    """The JetStream context of ``nc``; without it, of this loop's shared connection to
    ``NAQ_NATS_URL``, leased as by :func:`get_nats_connection`.

    For a client of naq's shared connection it is the context naq itself uses.

    Raises:
        NaqConnectionError: NATS can't be reached.
        ConfigurationError: ``nc`` is not a nats-py client.
    """
    if nc is None:
        return (await lease_connection(get_settings())).js
    if not isinstance(nc, NATS):
        raise ConfigurationError(f"nc={nc!r} is not a nats-py client")
    shared = shared_connection_of(nc)
    return shared.js if shared is not None else nc.jetstream()


async def close_nats_connection(url: str | None = None) -> None:
    """Give back a lease taken by :func:`get_nats_connection` (or
    :func:`get_jetstream_context`) on the shared connection to ``url``; the last one
    closes it unless something else uses it (module docstring). Harmless to call again.

    Raises:
        ConfigurationError: ``url`` is not a URL.
    """
    await release_connection(_settings_for(url))


async def ensure_stream(
    js: JetStreamContext | None = None,
    stream_name: str | None = None,
    subjects: Sequence[str] | None = None,
) -> None:
    """Make sure a work-queue stream exists, with naq's configuration for its jobs.

    Without ``stream_name``: naq's jobs stream (``<prefix>_jobs`` on
    ``<prefix>.queue.*``), as a Queue makes it before its first job. With another
    ``stream_name``: a stream of that name configured like it (work-queue retention,
    file storage, ``NAQ_REPLICAS``) on ``subjects`` (default ``<stream_name>.>``). A
    stream that exists is left as it is. ``js`` is the JetStream context to use
    (default: this loop's shared connection's; no lease is taken).

    Raises:
        ConfigurationError: a bad ``stream_name`` or ``js``, or ``subjects`` other than
            naq's for naq's jobs stream (named).
        NaqConnectionError: NATS can't be reached.
    """
    settings = get_settings()
    config = jobs_stream_config(Names(settings.prefix), settings)
    if stream_name is not None and stream_name != config.name:
        if not isinstance(stream_name, str) or not _STREAM_NAME.match(stream_name):
            raise ConfigurationError(
                f"stream_name={stream_name!r} may only hold letters, digits, '-' and '_'"
            )
        wanted = [f"{stream_name}.>"] if subjects is None else list(subjects)
        config = config.evolve(name=stream_name, subjects=wanted)
    elif subjects is not None and list(subjects) != config.subjects:
        raise ConfigurationError(
            f"subjects={list(subjects)!r}: naq's jobs stream {config.name!r} has the "
            f"subjects {config.subjects!r}"
        )
    if js is None:
        await (await get_connection(settings)).ensure_stream(config)
        return
    if not isinstance(js, JetStreamContext):
        raise ConfigurationError(f"js={js!r} is not a nats-py JetStream context")
    shared = shared_connection_of(js)
    # naq's own context remembers what it ensured; another one is asked every time.
    resources = shared.resources if shared is not None else Resources(js, settings)
    await resources.ensure_stream(config)
