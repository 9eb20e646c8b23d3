"""What the workers ran, per queue and function: the reports they publish and the figures
read from them.

Each worker adds every attempt that ends to an aggregate in memory
(:mod:`naq.worker.metering`) and publishes what was added since its last report, one
:class:`MetricsReport` every ``NAQ_METRICS_INTERVAL`` seconds (never one per job), to the
metrics stream, which keeps them ``NAQ_METRICS_RETENTION`` seconds. Everything here reads
those reports: :func:`read_reports` (the raw deltas, for the exporter),
:func:`function_metrics` (counts and percentiles per queue and function over a window) and
:func:`throughput` (jobs processed and failed per second, for charts).

Durations and waits are counted in the fixed buckets of :data:`DURATION_BUCKETS`; a
percentile is read from them by linear interpolation inside its bucket, never above the
largest value seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from naq.broker import Broker, decode_or_none
from naq.errors import ConfigurationError
from naq.names import validate_queue_name
from naq.results import resolve_settings
from naq.settings import Settings
from naq.sync import sync_twin

#: Upper bounds (seconds, inclusive) of the buckets durations and waits are counted in;
#: counts have one slot more, for what is above the last bound.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
#: Buckets of a :class:`FunctionMetrics` series (processed per slice of the window).
SERIES_BUCKETS = 30
#: Most steps :func:`throughput` returns.
MAX_STEPS = 10_000
#: Reports are looked for this many seconds before a window starts: a report is stored a
#: moment after it ends (and the worker's clock may be a little ahead of the server's).
READ_MARGIN = 30.0


class FunctionCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one worker counted for one (queue, function) over one report's interval:
    deltas, not totals since it started."""

    queue: str
    function: str
    #: Attempts that ended, whatever their outcome.
    processed: int = 0
    completed: int = 0
    #: Failed for good (retries exhausted, or refused).
    failed: int = 0
    #: Failed and to be run again.
    retried: int = 0
    #: Attempts that ran, by execution time (seconds; :data:`DURATION_BUCKETS`, then +Inf).
    duration_counts: list[int]
    duration_sum: float
    duration_max: float
    #: The same attempts by time in queue: from enqueue to this attempt's start.
    wait_counts: list[int]
    wait_sum: float
    wait_max: float


class MetricsReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One worker's counts from ``started_at`` to ``ended_at`` (UNIX seconds)."""

    worker: str
    host: str
    pid: int
    started_at: float
    ended_at: float
    rows: list[FunctionCounts]


report_encoder = msgspec.json.Encoder()
report_decoder = msgspec.json.Decoder(MetricsReport)


@dataclass(frozen=True)
class FunctionMetrics:
    """One (queue, function) over a window: counts, and durations and waits in seconds
    (0.0 when nothing ran)."""

    queue: str
    function: str
    processed: int
    failed: int
    retried: int
    duration_p50: float
    duration_p95: float
    duration_max: float
    wait_p50: float
    wait_p95: float
    completed: int = 0
    #: Attempts processed per slice of the window (:data:`SERIES_BUCKETS`), oldest first.
    series: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        data = dict(self.__dict__)
        data["series"] = list(self.series)
        return data


def percentile(counts: Sequence[int], q: float, largest: float) -> float:
    """The ``q`` quantile (0..1) of values counted in :data:`DURATION_BUCKETS` slots:
    linear inside its bucket, at most ``largest`` (the largest value counted); 0.0 for none.
    """
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = DURATION_BUCKETS[index - 1] if index else 0.0
            upper = DURATION_BUCKETS[index] if index < len(DURATION_BUCKETS) else largest
            upper = min(upper, largest)
            value = lower + (upper - lower) * max(0.0, rank - seen) / count
            return min(max(value, 0.0), largest)
        seen += count
    return largest


def check_seconds(name: str, value: object) -> float:
    """``value`` as a number of seconds > 0.

    Raises:
        ConfigurationError: it is not one (the message names ``name`` and the value).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(f"{name}={value!r} must be a number of seconds > 0")
    return float(value)


async def read_reports(
    since: float, *, queue: str | None = None, settings: Settings | None = None
) -> list[MetricsReport]:
    """The workers' reports that ended at or after UNIX time ``since``, oldest first; with
    ``queue``, only that queue's rows (and only the reports that have some).

    Read from the stream by start time: the reports before the window are not read.

    Raises:
        InvalidQueueNameError: a bad queue name.
        NaqConnectionError: NATS can't be reached.
    """
    if queue is not None:
        validate_queue_name(queue)
    broker = await Broker.connect(resolve_settings(None, settings))
    names = broker.names
    found = await broker.read_since(
        names.metrics_stream, names.metrics_subject_prefix + ".*", since - READ_MARGIN
    )
    reports = []
    for data in found:
        report = decode_or_none(report_decoder, data)
        if report is None or report.ended_at < since:
            continue
        if queue is not None:
            rows = [row for row in report.rows if row.queue == queue]
            if not rows:
                continue
            report = msgspec.structs.replace(report, rows=rows)
        reports.append(report)
    reports.sort(key=lambda r: r.ended_at)
    return reports


class _Sum:
    """One (queue, function)'s rows added up."""

    def __init__(self) -> None:
        self.processed = self.completed = self.failed = self.retried = 0
        self.durations = [0] * (len(DURATION_BUCKETS) + 1)
        self.waits = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_max = self.wait_max = 0.0
        self.series = [0] * SERIES_BUCKETS

    def add(self, row: FunctionCounts) -> None:
        self.processed += row.processed
        self.completed += row.completed
        self.failed += row.failed
        self.retried += row.retried
        for index, count in enumerate(row.duration_counts[: len(self.durations)]):
            self.durations[index] += count
        for index, count in enumerate(row.wait_counts[: len(self.waits)]):
            self.waits[index] += count
        self.duration_max = max(self.duration_max, row.duration_max)
        self.wait_max = max(self.wait_max, row.wait_max)


async def function_metrics(
    queue: str | None = None, window: float = 300, *, settings: Settings | None = None
) -> list[FunctionMetrics]:
    """One record per (queue, function) that ran in the last ``window`` seconds (or only
    ``queue``'s), by queue then function: counts from the workers' reports that ended in
    the window, percentiles from their buckets.

    Raises:
        ConfigurationError: ``window`` is not a number of seconds > 0.
        InvalidQueueNameError: a bad queue name.
        NaqConnectionError: NATS can't be reached.
    """
    window = check_seconds("window", window)
    now = time.time()
    since = now - window
    sums: dict[tuple[str, str], _Sum] = {}
    slice_length = window / SERIES_BUCKETS
    for report in await read_reports(since, queue=queue, settings=settings):
        slot = min(SERIES_BUCKETS - 1, max(0, int((report.ended_at - since) / slice_length)))
        for row in report.rows:
            total = sums.get((row.queue, row.function))
            if total is None:
                total = sums[(row.queue, row.function)] = _Sum()
            total.add(row)
            total.series[slot] += row.processed
    return [
        FunctionMetrics(
            queue=queue_name,
            function=function,
            processed=total.processed,
            failed=total.failed,
            retried=total.retried,
            duration_p50=percentile(total.durations, 0.5, total.duration_max),
            duration_p95=percentile(total.durations, 0.95, total.duration_max),
            duration_max=total.duration_max,
            wait_p50=percentile(total.waits, 0.5, total.wait_max),
            wait_p95=percentile(total.waits, 0.95, total.wait_max),
            completed=total.completed,
            series=tuple(total.series),
        )
        for (queue_name, function), total in sorted(sums.items())
    ]


function_metrics_sync = sync_twin(function_metrics)


async def throughput(
    window: float = 600,
    step: float = 10,
    *,
    queue: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[float], list[float]]:
    """Attempts processed and jobs failed for good per second, in steps of ``step`` seconds
    over the last ``window`` seconds, oldest first (every worker, or only ``queue``).

    A report's counts are spread evenly over the interval it covers.

    Raises:
        ConfigurationError: ``window`` or ``step`` is not a number of seconds > 0, or they
            make more than :data:`MAX_STEPS` steps.
        InvalidQueueNameError: a bad queue name.
        NaqConnectionError: NATS can't be reached.
    """
    window = check_seconds("window", window)
    step = check_seconds("step", step)
    steps = math.ceil(window / step - 1e-9)
    if steps > MAX_STEPS:
        raise ConfigurationError(
            f"window={window:g} in steps of step={step:g} is {steps} steps; at most {MAX_STEPS}"
        )
    end = time.time()
    start = end - steps * step
    processed = [0.0] * steps
    failed = [0.0] * steps
    for report in await read_reports(start, queue=queue, settings=settings):
        done = sum(row.processed for row in report.rows)
        lost = sum(row.failed for row in report.rows)
        _spread(processed, done, report, start, step)
        _spread(failed, lost, report, start, step)
    return [count / step for count in processed], [count / step for count in failed]


def _spread(
    slots: list[float], count: int, report: MetricsReport, start: float, step: float
) -> None:
    """Add ``count`` to the slots (``step`` seconds each from ``start``) over the interval
    ``report`` covers, in proportion to the time it spends in each."""
    if not count:
        return
    begin, end = min(report.started_at, report.ended_at), report.ended_at
    length = end - begin
    if length <= 0:
        if end >= start:
            slots[min(len(slots) - 1, int((end - start) // step))] += count
        return
    first = max(0, int((begin - start) // step))
    last = min(len(slots) - 1, int((end - start) // step))
    for index in range(first, last + 1):
        low = max(begin, start + index * step)
        high = min(end, start + (index + 1) * step)
        if high > low:
            slots[index] += count * (high - low) / length


throughput_sync = sync_twin(throughput)
