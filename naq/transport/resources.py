"""naq's streams, consumers and buckets: their configurations, and ensuring them.

Each is ensured once per connection and remembered, so the hot paths do no lookups. On
a cluster still electing leaders the ensuring is retried until it settles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.js.errors
from nats.js import JetStreamContext, api

from naq.names import Names
from naq.settings import Settings
from naq.transport.buckets import Bucket
from naq.transport.errors import Mapped, is_settling, map_error

log = logging.getLogger("naq.connection")
_T = TypeVar("_T")

#: How long a new replicated stream may take to elect its leader before naq uses it anyway.
LEADER_TIMEOUT = 10.0
#: Pause between looks at a new replicated stream's leader.
LEADER_POLL = 0.1
#: How long ensuring a stream, consumer or bucket retries while a cluster elects leaders.
SETTLE_TIMEOUT = 30.0
#: Seconds the metrics stream remembers report ids: a worker re-sending a report whose ack
#: was lost (the same id) within this time has it stored once.
METRICS_DUPLICATE_WINDOW = 600.0


class Resources:
    """The streams, consumers and buckets ensured on one connection."""

    def __init__(self, js: JetStreamContext, settings: Settings) -> None:
        self._js = js
        self._settings = settings
        self._mapped = Mapped(settings)
        self._ensured: set[str] = set()
        #: Ack wait (seconds) of each consumer ensured, by "stream/durable".
        self._ack_waits: dict[str, float] = {}
        self._buckets: dict[str, Bucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}

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
                    await self._js.stream_info(name)
                except nats.js.errors.NotFoundError:
                    try:
                        await self._js.add_stream(config)
                    except nats.js.errors.BadRequestError as exc:
                        # Created concurrently by another process with another config: use it.
                        log.debug("stream %s: %s", name, exc)
                await self._wait_for_leader(name)

            await self._settled(f"stream {name}", ensure)
            self._ensured.add(name)

    def forget_stream(self, name: str) -> None:
        """Look ``name`` up again the next time it is ensured (a write to it failed: it may
        have been deleted meanwhile)."""
        self._ensured.discard(name)

    async def ensure_consumer(
        self, stream: str, config: api.ConsumerConfig, *, set_ack_wait: bool = False
    ) -> float:
        """Create a durable consumer unless it exists (checked once per connection);
        returns its ack wait in seconds.

        An existing consumer keeps its configuration, unless ``set_ack_wait`` asks for
        ``config``'s ack wait: a consumer with another one is then updated to it (the
        rest of its configuration kept), and the change logged.
        """
        key = f"{stream}/{config.durable_name}"
        wanted = float(config.ack_wait or 0.0)
        known = self._ack_waits.get(key)
        if known is not None and (not set_ack_wait or _same(known, wanted)):
            return known
        async with self._lock(key):
            known = self._ack_waits.get(key)
            if known is not None and (not set_ack_wait or _same(known, wanted)):
                return known

            async def ensure() -> float:
                try:
                    info = await self._js.consumer_info(stream, config.durable_name or "")
                except nats.js.errors.NotFoundError:
                    try:
                        await self._js.add_consumer(stream, config)
                        return wanted
                    except nats.js.errors.BadRequestError as exc:
                        log.debug("consumer %s: %s", key, exc)  # made meanwhile: look again
                        info = await self._js.consumer_info(stream, config.durable_name or "")
                current = float(info.config.ack_wait or 0.0)
                if not set_ack_wait or _same(current, wanted):
                    return current
                await self._js.add_consumer(stream, info.config.evolve(ack_wait=wanted))
                if wanted < current:
                    # Their in-progress acks were paced for the old ack wait.
                    log.warning(
                        "consumer %s: ack wait lowered from %gs to %gs for every worker of "
                        "its queue; restart its workers started before, or their long jobs "
                        "may be delivered again",
                        key,
                        current,
                        wanted,
                    )
                else:
                    log.info("consumer %s: ack wait raised from %gs to %gs", key, current, wanted)
                return wanted

            ack_wait = await self._settled(f"consumer {key}", ensure)
            self._ack_waits[key] = ack_wait
            return ack_wait

    async def kv(self, bucket: str, *, ttl: float | None = None, history: int = 1) -> Bucket:
        """The KV bucket ``bucket``, created if missing (looked up once per connection)."""
        found = self._buckets.get(bucket)
        if found is not None:
            return found
        async with self._lock("kv:" + bucket):
            found = self._buckets.get(bucket)
            if found is not None:
                return found

            async def ensure() -> Bucket:
                try:
                    kv = await self._js.key_value(bucket)
                except nats.js.errors.BucketNotFoundError:
                    kv = await self._js.create_key_value(
                        bucket=bucket,
                        history=history,
                        ttl=ttl,
                        replicas=self._settings.replicas,
                        storage=api.StorageType.FILE,
                    )
                await self._wait_for_leader("KV_" + bucket)
                return Bucket(kv, bucket, self._mapped)

            found = self._buckets[bucket] = await self._settled(f"bucket {bucket}", ensure)
            return found

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
                if self._settings.replicas <= 1 or not is_settling(exc) or loop.time() > deadline:
                    raise map_error(exc, self._settings) from exc
                log.info("%s: cluster still settling (%r), retrying", what, exc)
            await asyncio.sleep(LEADER_POLL)

    async def _wait_for_leader(self, stream: str) -> None:
        """Wait until a replicated stream has a leader (answers writes), up to ``LEADER_TIMEOUT``.

        A stream another process just created in a cluster exists before its replicas
        have elected a leader; writes meanwhile get "no responders". One server has no
        election: nothing to wait for.
        """
        if self._settings.replicas <= 1:
            return
        deadline = asyncio.get_running_loop().time() + LEADER_TIMEOUT
        while True:
            info = await self._js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("stream %s has no leader after %gs", stream, LEADER_TIMEOUT)
                return
            await asyncio.sleep(LEADER_POLL)


#: The ``max_ack_pending`` of a queue's consumer without a concurrency limit: more than any
#: worker fleet holds at once.
UNLIMITED_ACK_PENDING = 20_000


def _same(a: float, b: float) -> bool:
    # Ack waits travel as nanoseconds: equal to the microsecond is the same.
    return abs(a - b) < 1e-6


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


def metrics_stream_config(names: Names, settings: Settings) -> api.StreamConfig:
    """The workers' metrics reports, kept ``metrics_retention`` seconds."""
    retention = float(settings.metrics_retention)
    return api.StreamConfig(
        name=names.metrics_stream,
        subjects=[names.metrics_subject_prefix + ".*"],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=settings.replicas,
        max_age=retention,
        # A report sent again after a lost ack (same message id) is stored once.
        duplicate_window=min(retention, METRICS_DUPLICATE_WINDOW),
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
        max_ack_pending=UNLIMITED_ACK_PENDING,
        deliver_policy=api.DeliverPolicy.ALL,
    )
