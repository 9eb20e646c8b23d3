"""The live service's metrics: what the Metrics pane and the Overview's charts show.

Every few seconds :class:`MetricsReader` asks the library for each function's figures
(``naq.metrics.function_metrics``) and the jobs processed and failed per second
(``naq.metrics.throughput``), and samples each queue's depth and latency from the
queue rows the feed brought; it turns all that into the TUI's changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from naq import metrics
from naq.settings import Settings
from naq_tui.service import Change, FunctionRow, QueueRow, QueueTrend, Remove, Series, Upsert

log = logging.getLogger("naq_tui.live")

#: Seconds between two reads (workers publish their figures about as often).
READ_SECONDS = 5.0
#: The Overview's chart: the last ten minutes, a value every ten seconds.
THROUGHPUT_WINDOW = 600.0
THROUGHPUT_STEP = 10.0
#: The Metrics pane's window: the last five minutes.
FUNCTION_WINDOW = 300.0
#: Samples of each queue's trend: as many as the chart's window holds.
TREND_SAMPLES = int(THROUGHPUT_WINDOW / READ_SECONDS)
#: Longest a read may take before it is given up until the next one.
READ_TIMEOUT = 2 * READ_SECONDS


def function_row(record: Any) -> FunctionRow:
    """A Metrics pane row from a ``naq.metrics.FunctionMetrics``."""
    return FunctionRow(
        queue=record.queue,
        function=record.function,
        processed=record.processed,
        completed=record.completed,
        failed=record.failed,
        retried=record.retried,
        duration_p50=record.duration_p50,
        duration_p95=record.duration_p95,
        duration_max=record.duration_max,
        wait_p50=record.wait_p50,
        wait_p95=record.wait_p95,
        series=tuple(record.series),
    )


class MetricsReader:
    """Reads the metrics and keeps the queues' recent depth and latency."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        #: The latest row of each queue, as the feed brings them.
        self.queues: dict[str, QueueRow] = {}
        self._pending: dict[str, deque[int]] = {}
        self._latency: dict[str, deque[float]] = {}
        #: Keys of the Metrics pane's rows sent so far (to remove those that go).
        self._functions: set[str] = set()
        self._throughput: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())

    def saw(self, change: Change) -> None:
        """Note a change of the feed (queue rows are sampled at each read)."""
        if isinstance(change, Upsert) and isinstance(change.row, QueueRow):
            self.queues[change.row.name] = change.row
        elif isinstance(change, Remove) and change.kind == "queue":
            self.queues.pop(change.key, None)
            self._pending.pop(change.key, None)
            self._latency.pop(change.key, None)

    async def read(self) -> list[Change]:
        """One read: the Metrics pane's rows (and removals), then the Overview's series."""
        changes: list[Change] = []
        records = await self._ask(
            metrics.function_metrics(window=FUNCTION_WINDOW, settings=self.settings)
        )
        if records is not None:
            rows = [function_row(record) for record in records]
            keys = {row.key for row in rows}
            changes += [Upsert(row) for row in rows]
            changes += [Remove("function", key) for key in sorted(self._functions - keys)]
            self._functions = keys
        figures = await self._ask(
            metrics.throughput(THROUGHPUT_WINDOW, THROUGHPUT_STEP, settings=self.settings)
        )
        if figures is not None:
            processed, failed = figures
            self._throughput = (tuple(processed), tuple(failed))
        changes.append(self._series())
        return changes

    async def _ask(self, call: Awaitable[Any]) -> Any | None:
        try:
            return await asyncio.wait_for(call, READ_TIMEOUT)
        except Exception as exc:  # the next read tries again; the feed reports the link
            log.debug("tui: reading metrics failed: %r", exc)
            return None

    def _series(self) -> Series:
        for name, row in self.queues.items():
            self._pending.setdefault(name, deque(maxlen=TREND_SAMPLES)).append(row.pending)
            self._latency.setdefault(name, deque(maxlen=TREND_SAMPLES)).append(row.latency)
        processed, failed = self._throughput
        return Series(
            at=self.clock(),
            step=THROUGHPUT_STEP,
            processed=processed,
            failed=failed,
            queues={
                name: QueueTrend(tuple(self._pending[name]), tuple(self._latency[name]))
                for name in self.queues
            },
        )
