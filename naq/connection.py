"""The connection to NATS: with naq.frames and naq.direct (its publish frames and its
direct subscriptions), the only code using nats-py.

One connection per event loop per server set and credentials, shared by every
Queue, Worker and helper in the process; long-lived processes reconnect
forever. Streams, consumers and buckets are ensured once per connection and
remembered, so the hot paths do no lookups. nats-py errors are turned into naq
errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import nats
import nats.aio.client as nats_client
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from naq.direct import is_direct, subscribe_direct
from naq.errors import ConfigurationError, NaqConnectionError, NaqException
from naq.frames import Framer
from naq.names import Names
from naq.settings import Settings, get_settings

log = logging.getLogger("naq.connection")
_T = TypeVar("_T")
#: How long a new replicated stream may take to elect its leader before naq uses it anyway.
LEADER_TIMEOUT = 10.0
#: Pause between looks at a new replicated stream's leader.
LEADER_POLL = 0.1
#: How long ensuring a stream, consumer or bucket retries while a cluster elects leaders.
SETTLE_TIMEOUT = 30.0
#: JetStream API error code: "JetStream system temporarily unavailable" (an election).
ERR_TEMPORARILY_UNAVAILABLE = 10008
#: "stream not found": while a cluster settles, also the answer about a stream another
#: process has just created, from a server that learns of it a moment later.
ERR_STREAM_NOT_FOUND = 10059

Msg = Msg
KeyValue = KeyValue
api = api
NatsError = nats.errors.Error
KeyNotFoundError = nats.js.errors.KeyNotFoundError
KeyWrongLastSequenceError = nats.js.errors.KeyWrongLastSequenceError
NotFoundError = nats.js.errors.NotFoundError
APIError = nats.js.errors.APIError
FetchTimeout = nats.errors.TimeoutError

#: How long a publish waits for its ack before it fails, and how often that is checked.
ACK_DEADLINE = 30.0
ACK_SWEEP_INTERVAL = 1.0
#: How long a CLI or library call waits for a first connection before giving up.
CONNECT_TIMEOUT = 5.0
#: JetStream API error code: wrong last sequence (compare-and-set lost).
ERR_WRONG_LAST_SEQUENCE = 10071


class _PubAck(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: dict[str, Any] | None = None


_puback_decoder = msgspec.json.Decoder(_PubAck)


@dataclass(frozen=True)
class PubAck:
    """JetStream's answer to a publish."""

    stream: str
    seq: int
    duplicate: bool


class PublishError(NaqException):
    """JetStream refused a publish (stream full, wrong last sequence, ...)."""

    def __init__(self, description: str, code: int | None, err_code: int | None) -> None:
        super().__init__(description)
        self.code = code
        self.err_code = err_code


def describe_servers(settings: Settings) -> str:
    """The server URLs as one string for messages."""
    return ",".join(settings.servers)


def unreachable_message(settings: Settings, reason: str = "") -> str:
    """The one line a user sees when NATS can't be reached."""
    detail = f" ({reason})" if reason else ""
    return (
        f"cannot connect to NATS at {describe_servers(settings)}{detail}: start one with "
        "'naq server' or point NAQ_NATS_URL / --nats-url at a running server"
    )


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


async def _all_done(futures: list[asyncio.Future[PubAck]]) -> None:
    """Wait until every future is done, waking once (not once per future, as awaiting
    each in turn would, for a thousand acks arriving one by one)."""
    remaining = sum(1 for future in futures if not future.done())
    if not remaining:
        return
    if len(futures) == 1:
        with contextlib.suppress(Exception):  # the caller reads the outcome off the future
            await futures[0]
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def one_done(_: asyncio.Future[PubAck]) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    for future in futures:
        if not future.done():
            future.add_done_callback(one_done)
    await waiter


def _is_settling(exc: BaseException) -> bool:
    """Whether a JetStream API failure is what a cluster electing leaders answers."""
    if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError)):
        return True
    return isinstance(exc, nats.js.errors.APIError) and exc.err_code in (
        ERR_TEMPORARILY_UNAVAILABLE,
        ERR_STREAM_NOT_FOUND,
    )


def forget(future: asyncio.Future[Any]) -> None:
    """Let a pipelined publish complete unobserved; a failure is logged, not raised."""

    def done(f: asyncio.Future[Any]) -> None:
        if not f.cancelled() and f.exception() is not None:
            log.warning("background publish failed: %s", f.exception())

    future.add_done_callback(done)


class Connection:
    """A NATS connection with its JetStream context, a pipelined publisher and
    the naq resources ensured on it.

    Obtain one with :func:`get_connection`; never close it from a Queue or a
    helper (others share it): :func:`close_connections` does that.
    """

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings
        self.servers = describe_servers(settings)
        self._ensured: set[str] = set()
        self._kv: dict[str, KeyValue] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: Publishes awaiting their ack: token -> (future, monotonic deadline), oldest first.
        self._acks: dict[str, tuple[asyncio.Future[PubAck], float]] = {}
        self._ack_sweeper: asyncio.Task[None] | None = None
        self._ack_prefix = ""
        self._ack_counter = 0
        self._framer = Framer(nc, plain=settings.plain_client)
        #: Whether publishes go out as naq's frames and replies come in through direct
        #: subscriptions (known once connected; off under ``plain_client``).
        self.fast_paths = False

    @property
    def is_closed(self) -> bool:
        """Whether the connection was closed for good."""
        return bool(self.nc.is_closed)

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up right now (False while reconnecting)."""
        return bool(self.nc.is_connected)

    # -- publishing ------------------------------------------------------

    async def subscribe_direct(self, subject: str, handler: Callable[[Msg], None]) -> Any:
        """Subscribe to ``subject`` with ``handler`` called as each message arrives
        (:func:`naq.direct.subscribe_direct`; plain nats-py under ``NAQ_PLAIN_CLIENT``)."""
        return await subscribe_direct(self.nc, subject, handler, plain=self.settings.plain_client)

    async def _start_acks(self) -> None:
        self._ack_prefix = self.nc.new_inbox() + "."
        sub = await self.subscribe_direct(self._ack_prefix + "*", self._on_ack)
        self.fast_paths = self._framer.lean and is_direct(sub)
        if not self.settings.plain_client and not self.fast_paths:
            log.warning(
                "nats-py %s lacks the client internals naq's fast paths use; "
                "publishing and receiving through its public API (slower)",
                getattr(nats_client, "__version__", "?"),
            )
        self._ack_sweeper = asyncio.ensure_future(self._sweep_acks())

    async def _sweep_acks(self) -> None:
        """Fail publishes whose ack is past its deadline (e.g. lost with a connection).

        One sweep a second for every publish, rather than a timer per wait: a timer per
        job is a good part of what a short job costs.
        """
        while True:
            await asyncio.sleep(ACK_SWEEP_INTERVAL)
            now = time.monotonic()
            # Every publish gets the same allowance, so the oldest entries expire first.
            while self._acks:
                token, (future, deadline) = next(iter(self._acks.items()))
                if deadline > now:
                    break
                del self._acks[token]
                if not future.done():
                    future.set_exception(self._no_ack(ACK_DEADLINE))

    def _no_ack(self, timeout: float) -> NaqConnectionError:
        return NaqConnectionError(
            f"NATS at {self.servers} did not acknowledge a publish within {timeout:g}s"
        )

    def _on_ack(self, msg: Msg) -> None:
        entry = self._acks.pop(msg.subject[len(self._ack_prefix) :], None)
        if entry is None or entry[0].done():
            return
        future = entry[0]
        if not msg.data:
            # A status message (e.g. 503 no responders) instead of an ack.
            status = (msg.headers or {}).get("Status", "")
            future.set_exception(
                PublishError(f"no stream answered the publish (status {status})", None, None)
            )
            return
        try:
            ack = _puback_decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(PublishError(f"bad publish ack: {exc}", None, None))
            return
        if ack.error:
            future.set_exception(
                PublishError(
                    str(ack.error.get("description", ack.error)),
                    ack.error.get("code"),
                    ack.error.get("err_code"),
                )
            )
        else:
            future.set_result(PubAck(ack.stream or "", ack.seq or 0, ack.duplicate))

    def publish_nowait(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> asyncio.Future[PubAck]:
        """Publish to JetStream and return a future of its ack without waiting.

        Many publishes in a row travel together (pipelined); await the futures
        (e.g. with :func:`wait_acks`) to learn each outcome.
        """
        self._ack_counter += 1
        token = str(self._ack_counter)
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._acks[token] = (future, time.monotonic() + ACK_DEADLINE)
        try:
            scheduled = self._framer.send(
                subject, payload, reply=self._ack_prefix + token, headers=headers
            )
        except Exception:
            self._acks.pop(token, None)
            raise
        if scheduled is not None:
            scheduled.add_done_callback(functools.partial(self._publish_failed, token))
        return future

    def _publish_failed(self, token: str, scheduled: asyncio.Future[None]) -> None:
        if scheduled.cancelled() or scheduled.exception() is None:
            return
        entry = self._acks.pop(token, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(self.map_error(scheduled.exception()))  # type: ignore[arg-type]

    def post(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        """Publish to JetStream without asking for an ack (the stream stores it all the same).

        For records whose loss is repaired elsewhere (a job's status, next to its
        result): no ack to send back and handle halves the messages such a write costs.
        Order with this connection's other publishes is kept.
        """
        scheduled = self._framer.send(subject, payload, headers=headers)
        if scheduled is not None:
            forget(scheduled)

    def ack(self, msg: Msg) -> None:
        """Acknowledge a JetStream message (as ``msg.ack()``, without a coroutine)."""
        if not msg.reply:
            raise NaqException("the message has no reply subject to acknowledge")
        self.post(msg.reply, b"")
        msg._ackd = True

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> PubAck:
        """Publish to JetStream and wait for the ack.

        Raises:
            PublishError: JetStream refused the message.
            NaqConnectionError: no ack within ``timeout``.
        """
        future = self.publish_nowait(subject, payload, headers)
        return await self.wait_ack(future, timeout)

    async def wait_ack(self, future: asyncio.Future[PubAck], timeout: float = 10.0) -> PubAck:
        """Wait for one publish ack.

        Raises:
            PublishError: JetStream refused the message.
            NaqConnectionError: no ack within ``timeout``.
        """
        (outcome,) = await self.wait_acks([future], timeout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def wait_acks(
        self, futures: list[asyncio.Future[PubAck]], timeout: float = ACK_DEADLINE
    ) -> list[PubAck | BaseException]:
        """Wait for many acks; each item is the ack or the error for that publish.

        Every publish fails by itself once it has waited ``ACK_DEADLINE``; a shorter
        ``timeout`` takes one timer for the lot, never a task or a future per publish
        (this is on every job's path).
        """
        if not futures:
            return []
        timer = None
        if timeout < ACK_DEADLINE:

            def expire() -> None:
                # Their entries go with the sweep at ACK_DEADLINE; a late ack finds them done.
                for future in futures:
                    if not future.done():
                        future.set_exception(self._no_ack(timeout))

            timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            await _all_done(futures)
        finally:
            if timer is not None:
                timer.cancel()
        return [
            future.exception() or future.result()  # type: ignore[misc]
            for future in futures
        ]

    # -- resources -------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def ensure_stream(self, config: api.StreamConfig) -> None:
        """Create ``config``'s stream unless it exists (checked once per connection)."""
        name = config.name or ""
        if name in self._ensured:
            return
        async with self._lock(name):
            if name in self._ensured:
                return

            async def ensure() -> None:
                try:
                    await self.js.stream_info(name)
                except nats.js.errors.NotFoundError:
                    try:
                        await self.js.add_stream(config)
                    except nats.js.errors.BadRequestError as exc:
                        # Created concurrently by another process with another config: use it.
                        log.debug("stream %s: %s", name, exc)
                await self._wait_for_leader(name)

            await self._settled(f"stream {name}", ensure)
            self._ensured.add(name)

    async def ensure_consumer(self, stream: str, config: api.ConsumerConfig) -> None:
        """Create a durable consumer unless it exists (checked once per connection)."""
        key = f"{stream}/{config.durable_name}"
        if key in self._ensured:
            return
        async with self._lock(key):
            if key in self._ensured:
                return

            async def ensure() -> None:
                try:
                    await self.js.consumer_info(stream, config.durable_name or "")
                except nats.js.errors.NotFoundError:
                    try:
                        await self.js.add_consumer(stream, config)
                    except nats.js.errors.BadRequestError as exc:
                        log.debug("consumer %s: %s", key, exc)

            await self._settled(f"consumer {key}", ensure)
            self._ensured.add(key)

    async def kv(self, bucket: str, *, ttl: float | None = None, history: int = 1) -> KeyValue:
        """The KV bucket ``bucket``, created if missing (looked up once per connection)."""
        kv = self._kv.get(bucket)
        if kv is not None:
            return kv
        async with self._lock("kv:" + bucket):
            kv = self._kv.get(bucket)
            if kv is not None:
                return kv

            async def ensure() -> KeyValue:
                try:
                    found = await self.js.key_value(bucket)
                except nats.js.errors.BucketNotFoundError:
                    found = await self.js.create_key_value(
                        bucket=bucket,
                        history=history,
                        ttl=ttl,
                        replicas=self.settings.replicas,
                        storage=api.StorageType.FILE,
                    )
                await self._wait_for_leader("KV_" + bucket)
                return found

            kv = self._kv[bucket] = await self._settled(f"bucket {bucket}", ensure)
            return kv

    async def _settled(self, what: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``attempt`` (idempotent JetStream API calls), again while a cluster settles.

        On a fresh or electing cluster, API requests for a stream or consumer that has no
        leader yet go unanswered, or are refused as temporarily unavailable, for a few
        seconds; processes started together (replicas of one deployment) meet exactly
        that. With ``replicas > 1`` such failures are retried up to ``SETTLE_TIMEOUT``;
        everything else, and anything on a single server, is an error at once.

        Raises:
            NaqException: the mapped error of the last attempt.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if self.settings.replicas <= 1 or not _is_settling(exc) or loop.time() > deadline:
                    raise self.map_error(exc) from exc
                log.info("%s: cluster still settling (%r), retrying", what, exc)
            await asyncio.sleep(LEADER_POLL)

    async def _wait_for_leader(self, stream: str) -> None:
        """Wait until a replicated stream has a leader (answers writes), up to ``LEADER_TIMEOUT``.

        A stream another process just created in a cluster exists before its replicas
        have elected a leader; writes meanwhile get "no responders". One server has no
        election: nothing to wait for.
        """
        if self.settings.replicas <= 1:
            return
        deadline = asyncio.get_running_loop().time() + LEADER_TIMEOUT
        while True:
            info = await self.js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("stream %s has no leader after %gs", stream, LEADER_TIMEOUT)
                return
            await asyncio.sleep(LEADER_POLL)

    def map_error(self, exc: BaseException) -> NaqException:
        """Turn a nats-py error into the naq error a user should see."""
        if isinstance(exc, NaqException):
            return exc
        if isinstance(exc, (nats.errors.ConnectionClosedError, nats.errors.NoServersError)):
            return NaqConnectionError(unreachable_message(self.settings, "connection closed"))
        if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError)):
            return NaqConnectionError(
                f"NATS at {self.servers} did not answer in time (is JetStream enabled? "
                "run nats-server with -js, or 'naq server')"
            )
        if isinstance(exc, nats.js.errors.ServiceUnavailableError):
            return NaqConnectionError(
                f"JetStream is not available at {self.servers}: run nats-server with -js"
            )
        if isinstance(exc, nats.errors.NoRespondersError):
            return NaqConnectionError(
                f"JetStream is not enabled at {self.servers}: run nats-server with -js"
            )
        # An API error's str names its code and description; its repr names neither.
        return NaqException(f"NATS error: {str(exc) or repr(exc)}")

    async def close(self) -> None:
        """Flush and close the connection."""
        if self._ack_sweeper is not None:
            self._ack_sweeper.cancel()
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
        await connection._start_acks()
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


async def close_connections() -> None:
    """Close every shared connection of the running event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _connections.pop(loop, {})
    for connection in per_loop.values():
        await connection.close()


def jobs_stream_config(names: Names, settings: Settings) -> api.StreamConfig:
    """The work-queue stream of every queue's jobs."""
    return api.StreamConfig(
        name=names.jobs_stream,
        subjects=[names.queue_subject("*")],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        discard=api.DiscardPolicy.NEW,
        num_replicas=settings.replicas,
        duplicate_window=120.0,
        allow_msg_ttl=True,
    )


def failed_stream_config(names: Names, settings: Settings) -> api.StreamConfig:
    """The stream of dead letters, kept as long as results."""
    return api.StreamConfig(
        name=names.failed_stream,
        subjects=[names.failed_subject("*")],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=settings.replicas,
        max_age=float(settings.default_result_ttl),
        allow_direct=True,
    )


def outcomes_stream_config(names: Names, settings: Settings) -> api.StreamConfig:
    """The log of ended jobs (one small message each), kept as long as their history."""
    return api.StreamConfig(
        name=names.outcomes_stream,
        subjects=[names.outcome_subject("*", "*")],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=settings.replicas,
        max_age=float(settings.history_ttl()),
        allow_direct=True,
    )


def consumer_config(names: Names, settings: Settings, queue: str) -> api.ConsumerConfig:
    """The durable pull consumer every worker of ``queue`` shares."""
    return api.ConsumerConfig(
        durable_name=names.consumer(queue),
        filter_subject=names.queue_subject(queue),
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=settings.default_ack_wait,
        # Redeliveries are counted by the worker (attempts vs crashes), so the
        # server never parks a message at MaxDeliver inside the work queue.
        max_deliver=-1,
        max_ack_pending=20_000,
        deliver_policy=api.DeliverPolicy.ALL,
    )


async def connect(nats_url: str | None = None, *, settings: Settings | None = None) -> Connection:
    """Open (or reuse) this event loop's shared connection.

    Raises:
        NaqConnectionError: NATS can't be reached.
    """
    return await get_connection((settings or get_settings()).replace(nats_url=nats_url))


async def disconnect() -> None:
    """Close this event loop's shared connections (they reopen on next use)."""
    await close_connections()
