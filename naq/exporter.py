"""The Prometheus face of naq: what ``naq exporter`` serves on ``/metrics``.

One exporter covers every worker, for it reads NATS, not the workers. The gauges are
the state of the queues' consumers and streams, the dead letters and the heartbeats;
the counters and histograms are sums of the workers' metrics reports, each of which
holds what one worker did in one interval (a delta, never a running total).

NATS is read in the background every few seconds, not at scrape time: a scrape is
answered at once from the last read whatever NATS does (a dead or slow NATS never holds
one: it shows as ``naq_up 0`` beside the values last read), several Prometheus servers
scraping cost NATS nothing more, and each report is read once as it arrives rather than
the whole retention window at every scrape.

Counters never go back while the exporter runs: every report in the metrics stream's
retention window is added at start, then each new one once (the exporter remembers the
last stream sequence it read); a restarted worker's reports add to the same sums, and
reports leaving the window take nothing away. A restarted exporter starts again from the
reports still in the window, which Prometheus' ``rate()`` and ``increase()`` take for a
counter reset.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from naq.broker import Broker
from naq.errors import ConfigurationError, NaqConnectionError, NaqException
from naq.metrics import DURATION_BUCKETS, FunctionCounts, report_decoder
from naq.monitor import QueueStats, WorkerInfo, current_queue_stats, live_workers
from naq.settings import Settings, get_settings
from naq.statuses import WorkerStatus
from naq.transport import Connection, NotFound, open_connection

log = logging.getLogger("naq.exporter")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108
#: Seconds between reads of NATS.
REFRESH_INTERVAL = 5.0
#: Seconds a read of the gauges may take before NATS counts as down.
REFRESH_TIMEOUT = 5.0


def _empty_counts() -> list[int]:
    return [0] * (len(DURATION_BUCKETS) + 1)


def _add_counts(into: list[int], counts: list[int]) -> None:
    # Counts past the known buckets go to the last slot (above every bound).
    for i, count in enumerate(counts):
        into[min(i, len(into) - 1)] += max(0, count)


@dataclass
class FunctionTotals:
    """Everything the reports read so far say of one (queue, function)."""

    processed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    duration_counts: list[int] = field(default_factory=_empty_counts)
    duration_sum: float = 0.0
    wait_counts: list[int] = field(default_factory=_empty_counts)
    wait_sum: float = 0.0

    def add(self, row: FunctionCounts) -> None:
        """Add one report's row (a negative figure adds nothing: counters only go up)."""
        self.processed += max(0, row.processed)
        self.completed += max(0, row.completed)
        self.failed += max(0, row.failed)
        self.retried += max(0, row.retried)
        _add_counts(self.duration_counts, row.duration_counts)
        self.duration_sum += max(0.0, row.duration_sum)
        _add_counts(self.wait_counts, row.wait_counts)
        self.wait_sum += max(0.0, row.wait_sum)


class ReportTotals:
    """The sums of every report read, and the stream sequence read up to."""

    def __init__(self) -> None:
        self.by_function: dict[tuple[str, str], FunctionTotals] = {}
        #: The last sequence of the metrics stream added in.
        self.last_seq = 0

    def add(self, seq: int, data: bytes) -> None:
        """Add the report stored at ``seq`` (one that can't be read as one is skipped)."""
        self.last_seq = max(self.last_seq, seq)
        try:
            report = report_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.debug("metrics report at %d skipped: %s", seq, exc)
            return
        for row in report.rows:
            key = (row.queue, row.function)
            totals = self.by_function.get(key)
            if totals is None:
                totals = self.by_function[key] = FunctionTotals()
            totals.add(row)


@dataclass(frozen=True)
class Snapshot:
    """What a scrape shows: the last values read, and whether the last read worked."""

    up: bool = False
    #: When NATS was last read successfully (UNIX seconds).
    refreshed_at: float | None = None
    queues: tuple[QueueStats, ...] = ()
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    workers: tuple[WorkerInfo, ...] = ()
    functions: Mapping[tuple[str, str], FunctionTotals] = field(default_factory=dict)


class Exporter:
    """Reads NATS every ``interval`` seconds and serves the result to Prometheus.

    ``timeout``: seconds a read of the gauges may take before NATS counts as down.

    Raises:
        ConfigurationError: ``interval`` or ``timeout`` is not a positive number.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        interval: float = REFRESH_INTERVAL,
        timeout: float = REFRESH_TIMEOUT,
    ) -> None:
        for name, value in (("interval", interval), ("timeout", timeout)):
            if not value > 0:
                raise ConfigurationError(
                    f"exporter {name}={value!r} must be a number of seconds > 0"
                )
        self.settings = settings or get_settings()
        self.interval = interval
        self.timeout = timeout
        #: The last values read; replaced whole, so a scrape (on the HTTP server's thread)
        #: always sees one consistent read.
        self.snapshot = Snapshot()
        self.registry = CollectorRegistry()
        self.registry.register(NaqCollector(lambda: self.snapshot))
        self._totals = ReportTotals()
        self._connection: Connection | None = None
        self._broker_of: Broker | None = None
        self._server: Any = None
        #: Whether the last read failed (an outage is logged once).
        self._failing = False

    def serve(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
        """Serve ``/metrics`` on ``host``:``port`` from a thread of its own; returns the port
        (the one chosen when ``port`` is 0).

        Raises:
            NaqException: the address can't be served on (in use, not this host's).
        """
        try:
            self._server, _thread = start_http_server(port, host, self.registry)
        except OSError as exc:
            raise NaqException(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        return int(self._server.server_address[1])

    async def run(self) -> None:
        """Read NATS now and every ``interval`` seconds after, until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    async def refresh(self) -> bool:
        """Read NATS once: the gauges, then the reports stored since the last read.

        Returns whether that worked; when not, ``naq_up`` is 0 and the values last read
        stay (the next read starts after the last report added, so none counts twice).
        """
        try:
            broker = await self._broker()
            self.snapshot = await asyncio.wait_for(self._read_gauges(broker), self.timeout)
            if await self._read_reports(broker):
                self.snapshot = replace(
                    self.snapshot, functions=copy.deepcopy(self._totals.by_function)
                )
        except (NaqException, asyncio.TimeoutError) as exc:
            # Said once per outage, not at every read of it.
            (log.debug if self._failing else log.warning)("reading NATS failed: %s", exc)
            self._failing = True
            self.snapshot = replace(self.snapshot, up=False)
            return False
        if self._failing:
            log.info("reading NATS again")
            self._failing = False
        return True

    async def close(self) -> None:
        """Stop serving and close the connection to NATS."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = self._broker_of = None

    async def _broker(self) -> Broker:
        if self._connection is None or self._broker_of is None:
            self._connection = await open_connection(
                self.settings, timeout=self.timeout, name="naq-exporter"
            )
            self._broker_of = Broker(self._connection, self.settings)
        if not self._connection.is_connected:
            # Reconnecting: every request would wait its timeout out.
            raise NaqConnectionError(
                f"lost the connection to NATS at {','.join(self.settings.servers)}; reconnecting"
            )
        return self._broker_of

    async def _read_gauges(self, broker: Broker) -> Snapshot:
        names = broker.names
        await broker.ensure_jobs_stream()
        await broker.ensure_failed_stream()
        queues = await current_queue_stats(broker)
        failed = await broker.subject_counts(names.failed_stream, names.failed_subject("*"))
        workers = await live_workers(broker)
        return replace(
            self.snapshot,
            up=True,
            refreshed_at=time.time(),
            queues=tuple(queues.values()),
            dead_letters={names.queue_from_failed_subject(s): n for s, n in failed.items()},
            workers=tuple(workers),
        )

    async def _read_reports(self, broker: Broker) -> bool:
        """Add the reports stored since the last read; whether there were any."""
        stream = broker.names.metrics_stream
        try:
            last = await asyncio.wait_for(broker.last_sequence(stream), self.timeout)
        except NotFound:
            return False  # no worker has reported yet
        if last < self._totals.last_seq:
            # The stream was made again: its sequences start over (the sums stay).
            self._totals.last_seq = 0
        if last == self._totals.last_seq:
            return False
        # Not bounded by the timeout: the first read takes in the whole retention window,
        # and a read cut short would be read again from the start. The read's own waits
        # bound it (each next message is awaited for a few seconds at most).
        subject = broker.names.metrics_subject_prefix + ".>"
        for seq, data in await broker.read_stream_from(stream, subject, self._totals.last_seq + 1):
            self._totals.add(seq, data)
        return True


class NaqCollector:
    """The metrics of a :class:`Snapshot`, in Prometheus' model (read at each scrape)."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Every metric of the current snapshot."""
        snap = self._snapshot()
        yield _gauge("naq_up", "1 when the last read of NATS worked, else 0.", int(snap.up))
        yield _gauge(
            "naq_last_read_timestamp_seconds",
            "When NATS was last read successfully (UNIX time; 0 before the first read).",
            snap.refreshed_at or 0.0,
        )
        yield from self._queues(snap)
        yield from self._workers(snap)
        yield from self._functions(snap)

    def _queues(self, snap: Snapshot) -> Iterator[Metric]:
        families = {
            "pending": _gauges(
                "naq_queue_pending", "Jobs never delivered yet (waiting for a worker).", "queue"
            ),
            "running": _gauges(
                "naq_queue_running",
                "Jobs delivered and not yet acknowledged (running, or waiting out a retry delay).",
                "queue",
            ),
            "latency": _gauges(
                "naq_queue_latency_seconds",
                "Seconds the oldest pending job has waited (0 when none is pending).",
                "queue",
            ),
            "paused": _gauges("naq_queue_paused", "1 when the queue is paused.", "queue"),
        }
        for stats in snap.queues:
            for name, family in families.items():
                family.add_metric([stats.name], float(getattr(stats, name)))
        yield from families.values()
        dead = _gauges("naq_dead_letters", "Jobs in the dead-letter stream.", "queue")
        for queue in sorted({s.name for s in snap.queues} | set(snap.dead_letters)):
            dead.add_metric([queue], snap.dead_letters.get(queue, 0))
        yield dead

    def _workers(self, snap: Snapshot) -> Iterator[Metric]:
        by_status = _gauges("naq_workers", "Live workers by status.", "status")
        for status in WorkerStatus:
            by_status.add_metric(
                [status.value], sum(1 for w in snap.workers if w.status == status.value)
            )
        yield by_status
        yield _gauge(
            "naq_worker_busy_slots",
            "Jobs running on every live worker.",
            sum(len(w.running) for w in snap.workers),
        )
        yield _gauge(
            "naq_worker_slots",
            "Jobs every live worker can run at once (their concurrency).",
            sum(w.concurrency for w in snap.workers),
        )

    def _functions(self, snap: Snapshot) -> Iterator[Metric]:
        labels = ["queue", "function"]
        counters = {
            "processed": CounterMetricFamily(
                "naq_jobs_processed", "Attempts that ended, whatever the outcome.", labels=labels
            ),
            "completed": CounterMetricFamily(
                "naq_jobs_completed", "Jobs that completed.", labels=labels
            ),
            "failed": CounterMetricFamily(
                "naq_jobs_failed", "Jobs that failed for good.", labels=labels
            ),
            "retried": CounterMetricFamily(
                "naq_jobs_retried", "Attempts that failed and were retried.", labels=labels
            ),
        }
        duration = HistogramMetricFamily(
            "naq_job_duration_seconds", "Time an attempt ran.", labels=labels
        )
        wait = HistogramMetricFamily(
            "naq_job_wait_seconds", "Time a job waited from enqueue to its start.", labels=labels
        )
        for (queue, function), totals in sorted(snap.functions.items()):
            for name, family in counters.items():
                family.add_metric([queue, function], getattr(totals, name))
            duration.add_metric(
                [queue, function], _buckets(totals.duration_counts), totals.duration_sum
            )
            wait.add_metric([queue, function], _buckets(totals.wait_counts), totals.wait_sum)
        yield from counters.values()
        yield duration
        yield wait


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A gauge without labels."""
    return GaugeMetricFamily(name, documentation, value=value)


def _gauges(name: str, documentation: str, label: str) -> GaugeMetricFamily:
    """A gauge family, one value per ``label`` value (added by the caller)."""
    return GaugeMetricFamily(name, documentation, labels=[label])


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus' cumulative ``le`` buckets, +Inf last."""
    buckets = []
    running = 0
    # The last slot (above every bound) only counts towards +Inf.
    for bound, count in zip(DURATION_BUCKETS, counts, strict=False):
        running += count
        buckets.append((floatToGoString(bound), float(running)))
    buckets.append(("+Inf", float(sum(counts))))
    return buckets
