"""The connection to NATS, as naq's users reach it.

The connection itself lives in :mod:`naq.transport` with the rest of what talks to
NATS; this module is its public face: connecting and disconnecting, the shared
connection of an event loop, and what a publish answers.
"""

from __future__ import annotations

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
    "connect",
    "disconnect",
    "get_connection",
    "open_connection",
]
