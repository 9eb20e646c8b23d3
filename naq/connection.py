"""The connection to NATS, as naq's users reach it.

The connection itself lives in :mod:`naq.transport` with the rest of what talks to
NATS; this module is its public face: connecting and disconnecting, the shared
connection of an event loop, and what a publish answers.

It also has the functions of the original API: ``get_nats_connection(url=None)`` (the
loop's shared connection as a nats-py client, leased), ``get_jetstream_context(nc=None)``,
``close_nats_connection(url=None)`` (gives the lease back; the connection is closed only
once nothing uses it) and ``ensure_stream(js=None, stream_name=None, subjects=None)``
(naq's jobs stream); :mod:`naq.transport.client` states the lease rule.
"""

from __future__ import annotations

from naq.transport.client import (
    close_nats_connection,
    ensure_stream,
    get_jetstream_context,
    get_nats_connection,
)
from naq.transport.connection import (
    CONNECT_TIMEOUT,
    Connection,
    close_connections,
    connect,
    disconnect,
    get_connection,
    open_connection,
)
from naq.transport.errors import PublishError
from naq.transport.publisher import PubAck

__all__ = [
    "CONNECT_TIMEOUT",
    "Connection",
    "PubAck",
    "PublishError",
    "close_connections",
    "close_nats_connection",
    "connect",
    "disconnect",
    "ensure_stream",
    "get_connection",
    "get_jetstream_context",
    "get_nats_connection",
    "open_connection",
]
