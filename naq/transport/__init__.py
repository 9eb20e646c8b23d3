"""The NATS transport: the only part of naq that uses nats-py.

``connection`` (connect, credentials, TLS, reconnect, the shared connection and its leases),
``client`` (its nats-py client and JetStream context for user code), ``publisher``
(pipelined publishes and their acks) over ``frames`` (naq's publish frames), ``direct``
(subscriptions handled from the read loop), ``puller`` (pull requests by hand),
``resources`` (ensuring naq's streams, consumers and buckets, and their configurations),
``buckets`` (KV reads and compare-and-set writes), ``streams`` (stream and consumer
requests), ``ordered`` (reads through ordered consumers), ``errors`` (nats-py's errors
as naq's, mapped once) and ``nats_import`` (importing nats-py without aiohttp).
"""

from naq.transport.nats_import import import_nats

import_nats()  # before the modules below import nats-py

from naq.transport.buckets import Bucket, Changes, KVChange, KVEntry
from naq.transport.client import (
    close_nats_connection,
    ensure_stream,
    get_jetstream_context,
    get_nats_connection,
)
from naq.transport.connection import (
    CONNECT_TIMEOUT,
    Connection,
    Msg,
    close_connections,
    connect,
    disconnect,
    get_connection,
    open_connection,
)
from naq.transport.errors import (
    ERR_WRONG_LAST_SEQUENCE,
    JetStreamError,
    NotFound,
    PublishError,
    RevisionConflict,
)
from naq.transport.ordered import delivered_so_far
from naq.transport.publisher import PubAck, forget
from naq.transport.puller import Puller
from naq.transport.resources import (
    UNLIMITED_ACK_PENDING,
    consumer_config,
    failed_stream_config,
    jobs_stream_config,
    metrics_stream_config,
    outcomes_stream_config,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "ERR_WRONG_LAST_SEQUENCE",
    "Bucket",
    "Changes",
    "Connection",
    "JetStreamError",
    "KVChange",
    "KVEntry",
    "Msg",
    "NotFound",
    "PubAck",
    "PublishError",
    "Puller",
    "RevisionConflict",
    "close_connections",
    "close_nats_connection",
    "connect",
    "UNLIMITED_ACK_PENDING",
    "consumer_config",
    "delivered_so_far",
    "disconnect",
    "ensure_stream",
    "failed_stream_config",
    "forget",
    "get_connection",
    "get_jetstream_context",
    "get_nats_connection",
    "jobs_stream_config",
    "metrics_stream_config",
    "open_connection",
    "outcomes_stream_config",
]
