"""A worker's metrics: every attempt that ends is added to an aggregate per (queue,
function) in memory, and what was added since the last report goes out as one
:class:`~naq.metrics.MetricsReport` every ``NAQ_METRICS_INTERVAL`` seconds.

Adding an attempt costs two dict lookups, two bisections and a few additions (no
allocation, no I/O); an interval in which nothing ended sends nothing. A report that
could not be stored is kept and sent again, under the same message id, before the next
one is cut, so a count is neither lost nor (a lost ack notwithstanding) counted twice;
what ends meanwhile waits in the aggregate. A graceful stop sends what is left.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from bisect import bisect_left

from naq.broker import Broker
from naq.metrics import DURATION_BUCKETS, FunctionCounts, MetricsReport, report_encoder
from naq.models import JobEnvelope, JobStatus

log = logging.getLogger("naq.worker")

#: Seconds a report waits for its ack before it is kept for the next interval.
PUBLISH_TIMEOUT = 5.0

_SLOTS = len(DURATION_BUCKETS) + 1
_ZEROS = (0,) * _SLOTS
# Looked up once: an enum member's lookup costs as much as the rest of a count.
_COMPLETED, _RETRY, _FAILED = JobStatus.COMPLETED, JobStatus.RETRY, JobStatus.FAILED


class Tally:
    """One (queue, function)'s counts since the last report."""

    __slots__ = (
        "completed",
        "duration_counts",
        "duration_max",
        "duration_sum",
        "failed",
        "function",
        "processed",
        "queue",
        "retried",
        "wait_counts",
        "wait_max",
        "wait_sum",
    )

    def __init__(self, queue: str, function: str) -> None:
        self.queue = queue
        self.function = function
        self.duration_counts = [0] * _SLOTS
        self.wait_counts = [0] * _SLOTS
        self.clear()

    def clear(self) -> None:
        """Back to nothing counted (the lists are kept: no allocation per interval)."""
        self.processed = self.completed = self.failed = self.retried = 0
        self.duration_sum = self.duration_max = self.wait_sum = self.wait_max = 0.0
        self.duration_counts[:] = _ZEROS
        self.wait_counts[:] = _ZEROS

    def row(self) -> FunctionCounts:
        """The counts as a report's row."""
        return FunctionCounts(
            queue=self.queue,
            function=self.function,
            processed=self.processed,
            completed=self.completed,
            failed=self.failed,
            retried=self.retried,
            duration_counts=list(self.duration_counts),
            duration_sum=self.duration_sum,
            duration_max=self.duration_max,
            wait_counts=list(self.wait_counts),
            wait_sum=self.wait_sum,
            wait_max=self.wait_max,
        )


class Metering:
    """What one run of a worker counts, and its reports."""

    def __init__(self, broker: Broker, worker: str) -> None:
        self._broker = broker
        self._worker = worker
        self.interval = broker.settings.metrics_interval
        self.enabled = self.interval > 0
        if not self.enabled:
            self.ended = self._ignore  # type: ignore[method-assign]
        #: queue -> function -> its tally: two lookups and no key to build per attempt.
        self._tallies: dict[str, dict[str, Tally]] = {}
        self._host = socket.gethostname()
        self._pid = os.getpid()
        #: Message ids of this run's reports: ``<worker>:<run>:<n>``.
        self._run = uuid.uuid4().hex[:12]
        self._sent = 0
        self._interval_start = time.time()
        #: The report cut and not yet stored, with its message id.
        self._pending: tuple[bytes, str] | None = None
        #: Reports stored, and attempts to store one that failed.
        self.published = 0
        self.failed_publishes = 0

    # -- counting (on every attempt's path) ------------------------------------------

    def ended(
        self, envelope: JobEnvelope, outcome: str, started: float | None, ended: float | None
    ) -> None:
        """Count an attempt of ``envelope``'s job whose outcome was stored: ``outcome`` is
        completed, failed or retry (another, e.g. a result that lost to a cancellation,
        counts as processed only). One that ran (it has ``started`` and ``ended``) adds its
        duration and its time in queue; a job refused before running adds neither."""
        by_function = self._tallies.get(envelope.queue)
        if by_function is None:
            by_function = self._tallies[envelope.queue] = {}
        tally = by_function.get(envelope.fn)
        if tally is None:
            tally = by_function[envelope.fn] = Tally(envelope.queue, envelope.fn)
        tally.processed += 1
        if outcome == _COMPLETED:
            tally.completed += 1
        elif outcome == _RETRY:
            tally.retried += 1
        elif outcome == _FAILED:
            tally.failed += 1
        if started is None or ended is None:
            return  # refused, or past its deliveries: it never ran
        duration = ended - started
        if duration < 0.0:
            duration = 0.0
        tally.duration_counts[bisect_left(DURATION_BUCKETS, duration)] += 1
        tally.duration_sum += duration
        if duration > tally.duration_max:
            tally.duration_max = duration
        wait = started - envelope.enqueued_at
        if wait < 0.0:
            wait = 0.0  # the producer's clock ahead of this one
        tally.wait_counts[bisect_left(DURATION_BUCKETS, wait)] += 1
        tally.wait_sum += wait
        if wait > tally.wait_max:
            tally.wait_max = wait

    def _ignore(
        self, envelope: JobEnvelope, outcome: str, started: float | None, ended: float | None
    ) -> None:
        """``ended`` with metrics off (``NAQ_METRICS_INTERVAL=0``)."""

    # -- reports -----------------------------------------------------------------

    def _cut(self) -> tuple[bytes, str] | None:
        """This interval's report (and its message id), the tallies cleared; None when
        nothing ended in it."""
        now = time.time()
        rows = []
        for by_function in self._tallies.values():
            for tally in by_function.values():
                if tally.processed:
                    rows.append(tally.row())
                    tally.clear()
        started, self._interval_start = self._interval_start, now
        if not rows:
            return None
        report = MetricsReport(
            worker=self._worker,
            host=self._host,
            pid=self._pid,
            started_at=started,
            ended_at=now,
            rows=rows,
        )
        self._sent += 1
        return report_encoder.encode(report), f"{self._worker}:{self._run}:{self._sent}"

    async def publish(self) -> bool:
        """Send the report kept from a failed try, if any, then this interval's; whether
        everything counted so far was stored (a failure is logged, its counts kept)."""
        fresh = self._pending is None
        if fresh:
            self._pending = self._cut()
        if self._pending is None:
            return True
        report, report_id = self._pending
        try:
            await self._broker.publish_metrics(self._worker, report, report_id, PUBLISH_TIMEOUT)
        except Exception as exc:
            # Kept as it is, message id and all (so is a report whose send a stop cancels).
            self.failed_publishes += 1
            log.warning(
                "worker %s: metrics report not stored (%s); kept to be sent again",
                self._worker,
                exc,
            )
            return False
        self._pending = None
        self.published += 1
        # An older report went: this interval's follows now, not an interval later.
        return True if fresh else await self.publish()

    async def run(self) -> None:
        """Report every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.publish()

    async def flush(self) -> None:
        """Send what is left (the worker is stopping). Not stored within
        ``PUBLISH_TIMEOUT`` (NATS unreachable), it is lost, and logged."""
        if self.enabled:
            await self.publish()
