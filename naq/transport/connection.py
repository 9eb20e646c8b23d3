"""The connection to NATS: connecting (servers, credentials, TLS), reconnecting, and the
one connection per event loop that a process's queues, workers and helpers share.

One connection per event loop per server set and credentials, shared by every Queue,
Worker and helper in the process; long-lived processes reconnect forever. A
:class:`Connection` carries the rest of the transport: its publisher
(:mod:`~naq.transport.publisher`), the resources ensured on it
(:mod:`~naq.transport.resources`), its stream requests (:mod:`~naq.transport.streams`)
and ordered reads (:mod:`~naq.transport.ordered`); every error of theirs is a naq error
(:mod:`~naq.transport.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from naq.errors import ConfigurationError, NaqConnectionError
from naq.settings import Settings, get_settings
from naq.transport.direct import subscribe_direct
from naq.transport.errors import Mapped, describe_servers, unreachable_message
from naq.transport.ordered import OrderedReads
from naq.transport.publisher import Publisher
from naq.transport.resources import Resources
from naq.transport.streams import Streams

log = logging.getLogger("naq.connection")

#: How long a CLI or library call waits for a first connection before giving up.
CONNECT_TIMEOUT = 5.0


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    for variable, path in (
        ("NAQ_NATS_TLS_CA", settings.nats_tls_ca),
        ("NAQ_NATS_TLS_CERT", settings.nats_tls_cert),
        ("NAQ_NATS_TLS_KEY", settings.nats_tls_key),
    ):
        if path and not os.path.isfile(path):
            raise ConfigurationError(f"{variable} file {path!r} does not exist")
    try:
        context = ssl.create_default_context(cafile=settings.nats_tls_ca)
        if settings.nats_tls_cert:
            context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            repr(path)
            for path in (settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key)
            if path
        )
        raise ConfigurationError(f"cannot load the TLS files {files} ({exc})") from exc
    return context


def _auth_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password or ""
    if settings.nats_token:
        options["token"] = settings.nats_token
    if settings.nats_creds:
        if not os.path.exists(settings.nats_creds):
            raise ConfigurationError(f"NAQ_NATS_CREDS file {settings.nats_creds!r} does not exist")
        options["user_credentials"] = settings.nats_creds
    if settings.nats_nkey_seed:
        seed = settings.nats_nkey_seed
        if os.path.exists(seed):
            options["nkeys_seed"] = seed
        elif seed.startswith("SU"):
            options["nkeys_seed_str"] = seed
        else:
            raise ConfigurationError(
                f"NAQ_NATS_NKEY_SEED={seed[:4]!r}... is neither a seed file nor a user seed"
            )
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


def _connection_key(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.servers,
        settings.nats_user,
        settings.nats_password,
        settings.nats_token,
        settings.nats_creds,
        settings.nats_nkey_seed,
        settings.nats_tls_ca,
        settings.nats_tls_cert,
        settings.nats_tls_key,
        settings.plain_client,
    )


class Connection:
    """A NATS connection with its JetStream context, a pipelined publisher and the
    naq resources ensured on it.

    Obtain one with :func:`get_connection`; never close it from a Queue or a helper
    (others share it): :func:`close_connections` does that, and :func:`release_connection`
    when the last user lets go of it (see :attr:`in_use`). The publisher's and the
    resources' methods are the connection's own (``publish_nowait``, ``post``, ``ack``,
    ``publish``, ``wait_ack``, ``wait_acks``; ``ensure_stream``, ``ensure_consumer``,
    ``kv``), bound once here so a call on every job's path costs no extra hop.
    """

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings
        self._mapped = Mapped(settings)
        #: Pipelined JetStream publishes and their acks.
        self.publisher = publisher = Publisher(nc, settings)
        self.publish_nowait = publisher.publish_nowait
        self.post = publisher.post
        self.ack = publisher.ack
        self.publish = publisher.publish
        self.wait_ack = publisher.wait_ack
        self.wait_acks = publisher.wait_acks
        #: naq's streams, consumers and buckets, ensured once.
        self.resources = resources = Resources(self.js, settings)
        self.ensure_stream = resources.ensure_stream
        self.ensure_consumer = resources.ensure_consumer
        self.kv = resources.kv
        #: Stream and consumer requests.
        self.streams = Streams(nc, self.js, settings)
        #: Reads through ordered consumers.
        self.ordered = OrderedReads(self.js, self.streams, settings)
        #: Leases taken on the nats-py client by user code (:func:`lease_connection`).
        self.leases = 0
        #: Set once :func:`connect` handed the connection out: it then stays open until
        #: :func:`disconnect`, whatever the leases.
        self.pinned = False
        self._holders: weakref.WeakSet[object] = weakref.WeakSet()

    def hold(self, holder: object) -> None:
        """Count ``holder`` as a user of this connection for as long as it lives.

        naq's own users (each Broker: a Queue's, a helper call's) hold it this way, so a
        lease released by user code never closes it under them; they take no lease
        because they have no moment to give one back (a Queue may simply be dropped).
        """
        self._holders.add(holder)

    @property
    def in_use(self) -> bool:
        """Whether anything still uses the connection: a lease, :func:`connect`, or a
        living holder."""
        return self.leases > 0 or self.pinned or len(self._holders) > 0

    @property
    def fast_paths(self) -> bool:
        """Whether publishes go out as naq's frames and replies come in through direct
        subscriptions (known once connected; off under ``plain_client``)."""
        return self.publisher.fast_paths

    @property
    def is_closed(self) -> bool:
        """Whether the connection was closed for good."""
        return bool(self.nc.is_closed)

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up right now (False while reconnecting)."""
        return bool(self.nc.is_connected)

    # -- plain NATS messaging ------------------------------------------------

    async def subscribe(self, subject: str, callback: Callable[[Msg], Awaitable[None]]) -> Any:
        """Subscribe to ``subject``, with ``callback`` awaited for each message."""
        with self._mapped:
            return await self.nc.subscribe(subject, cb=callback)

    async def subscribe_direct(self, subject: str, handler: Callable[[Msg], None]) -> Any:
        """Subscribe to ``subject`` with ``handler`` called as each message arrives
        (:func:`naq.transport.direct.subscribe_direct`; plain nats-py under
        ``NAQ_PLAIN_CLIENT``)."""
        with self._mapped:
            return await subscribe_direct(
                self.nc, subject, handler, plain=self.settings.plain_client
            )

    async def send(self, subject: str, payload: bytes = b"") -> None:
        """Publish a plain NATS message (no stream stores it, nothing answers)."""
        with self._mapped:
            await self.nc.publish(subject, payload)

    async def request(self, subject: str, payload: bytes, timeout: float) -> Msg:
        """Send a request and wait up to ``timeout`` seconds for its reply.

        Raises:
            NaqConnectionError: no reply in time (or nobody listens), or NATS is unreachable.
        """
        with self._mapped:
            return await self.nc.request(subject, payload, timeout=timeout)

    async def close(self) -> None:
        """Flush and close the connection."""
        self.publisher.stop()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        with contextlib.suppress(Exception):
            await self.nc.close()


_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], Connection]
]
_connections = weakref.WeakKeyDictionary()
_connecting: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Lock]
]
_connecting = weakref.WeakKeyDictionary()


async def open_connection(
    settings: Settings,
    *,
    timeout: float | None = CONNECT_TIMEOUT,
    name: str | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> Connection:
    """Open a new connection that reconnects forever once established.

    ``timeout`` bounds the first connection (``None``: keep trying).

    Raises:
        NaqConnectionError: the servers can't be reached in time, or refused
            the credentials.
        ConfigurationError: credential or TLS files can't be used.
    """
    options = _auth_options(settings)
    last_error: list[BaseException] = []
    refused = asyncio.Event()
    unreachable = asyncio.Event()
    tls_failed = asyncio.Event()
    connection_refusals = 0
    uses_tls = "tls" in options

    async def error_cb(exc: Exception) -> None:
        nonlocal connection_refusals
        last_error[:] = [exc]
        if isinstance(exc, nats.errors.AuthorizationError) or "authorization" in str(exc).lower():
            refused.set()
        elif isinstance(exc, ssl.SSLError) or (
            # A server that rejects our certificate may just drop the connection (TLS 1.3).
            uses_tls and isinstance(exc, (ConnectionResetError, BrokenPipeError))
        ):
            # A handshake that failed once fails every time: retrying only hides why.
            tls_failed.set()
        elif isinstance(exc, ConnectionRefusedError):
            # Nothing listens there: two refusals per server are answer enough.
            connection_refusals += 1
            if connection_refusals >= 2 * len(settings.servers):
                unreachable.set()
        else:
            log.debug("nats: %r", exc)

    async def disconnected_cb() -> None:
        if on_disconnect is not None:
            await on_disconnect()

    async def reconnected_cb() -> None:
        if on_reconnect is not None:
            await on_reconnect()

    nc = NATS()
    connect = asyncio.ensure_future(
        nc.connect(
            servers=list(settings.servers),
            name=name or "naq",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=2,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
            **options,
        )
    )
    refused_wait = asyncio.ensure_future(refused.wait())
    tls_wait = asyncio.ensure_future(tls_failed.wait())
    unreachable_wait = asyncio.ensure_future(unreachable.wait())
    waits = {connect, refused_wait, tls_wait}
    if timeout is not None:
        waits.add(unreachable_wait)
    try:
        await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        refused_wait.cancel()
        tls_wait.cancel()
        unreachable_wait.cancel()
    if connect.done() and connect.exception() is None:
        connection = Connection(nc, settings)
        await connection.publisher.start()
        return connection
    connect.cancel()
    with contextlib.suppress(BaseException):
        await connect
    with contextlib.suppress(Exception):
        await nc.close()
    if refused.is_set():
        raise NaqConnectionError(
            f"NATS at {describe_servers(settings)} refused the credentials "
            "(check NAQ_NATS_USER/PASSWORD, TOKEN, CREDS or NKEY_SEED)"
        )
    if tls_failed.is_set():
        raise NaqConnectionError(
            f"TLS with NATS at {describe_servers(settings)} failed "
            f"({str(last_error[0]) or type(last_error[0]).__name__}): check NAQ_NATS_TLS_CA, "
            "NAQ_NATS_TLS_CERT and NAQ_NATS_TLS_KEY against the server's certificates"
        )
    if connect.done() and not connect.cancelled() and connect.exception() is not None:
        reason = repr(connect.exception())
    elif last_error:
        reason = str(last_error[0]) or type(last_error[0]).__name__
    else:
        reason = f"no answer within {timeout:g}s"
    raise NaqConnectionError(unreachable_message(settings, reason))


async def get_connection(settings: Settings) -> Connection:
    """The shared connection of this event loop for ``settings``' servers and credentials.

    Raises:
        NaqConnectionError: as :func:`open_connection`.
    """
    loop = asyncio.get_running_loop()
    per_loop = _connections.get(loop)
    if per_loop is None:
        per_loop = _connections[loop] = {}
    key = _connection_key(settings)
    connection = per_loop.get(key)
    if connection is not None and not connection.is_closed:
        return connection
    locks = _connecting.setdefault(loop, {})
    lock = locks.setdefault(key, asyncio.Lock())
    async with lock:
        connection = per_loop.get(key)
        if connection is None or connection.is_closed:
            connection = await open_connection(settings)
            per_loop[key] = connection
        return connection


async def lease_connection(settings: Settings) -> Connection:
    """The shared connection of this event loop for ``settings`` (as :func:`get_connection`),
    with one more lease on it; :func:`release_connection` gives the lease back.

    Raises:
        NaqConnectionError: as :func:`open_connection`.
    """
    connection = await get_connection(settings)
    connection.leases += 1
    return connection


async def release_connection(settings: Settings) -> bool:
    """Give back one lease on this event loop's shared connection for ``settings``.

    Releasing the last lease closes the connection only if nothing else uses it
    (:attr:`Connection.in_use`: no :func:`connect`, no living Queue or helper call on
    it); otherwise it stays the loop's shared connection, closed by
    :func:`close_connections`. With no lease out (released already, or the connection
    closed meanwhile) nothing happens. Returns whether the connection was closed.
    """
    per_loop = _connections.get(asyncio.get_running_loop())
    key = _connection_key(settings)
    connection = per_loop.get(key) if per_loop is not None else None
    if per_loop is None or connection is None or connection.leases == 0:
        return False
    connection.leases -= 1
    if connection.in_use:
        return False
    # Out of the registry before the close awaits, so a user arriving meanwhile opens anew.
    del per_loop[key]
    await connection.close()
    return True


def shared_connection_of(handle: NATS | JetStreamContext) -> Connection | None:
    """The shared connection of the running event loop whose nats-py client or JetStream
    context is ``handle``; None when it is no such connection's."""
    for connection in _connections.get(asyncio.get_running_loop(), {}).values():
        if handle is connection.nc or handle is connection.js:
            return connection
    return None


async def close_connections() -> None:
    """Close every shared connection of the running event loop, whatever uses them
    (they reopen on next use)."""
    loop = asyncio.get_running_loop()
    per_loop = _connections.pop(loop, {})
    for connection in per_loop.values():
        await connection.close()


async def connect(nats_url: str | None = None, *, settings: Settings | None = None) -> Connection:
    """Open (or reuse) this event loop's shared connection; it stays open until
    :func:`disconnect` (a lease released by user code does not close it).

    Raises:
        NaqConnectionError: NATS can't be reached.
    """
    connection = await get_connection((settings or get_settings()).replace(nats_url=nats_url))
    connection.pinned = True
    return connection


async def disconnect() -> None:
    """Close this event loop's shared connections, whatever uses them (they reopen on
    next use)."""
    await close_connections()
