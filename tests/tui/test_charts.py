"""The pure parts of the Overview and the Metrics pane: charts from zero, what counts as a
problem, and the live service's reading of the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from naq.settings import Settings
from naq_tui import live_metrics
from naq_tui.charts import from_zero, spark
from naq_tui.health import climbing, failing, latency_level
from naq_tui.live import attempt, to_change
from naq_tui.live_metrics import MetricsReader
from naq_tui.service import Attempt, FunctionRow, QueueRow, Remove, Series, Upsert, WorkerRow


def test_bars_start_at_zero_and_fill_the_width() -> None:
    # Textual's Sparkline scales from the lowest value: 15.0 vs 15.5 would fill the height.
    assert from_zero([15.0, 15.5], 3) == [0.0, 15.0, 15.5]
    assert from_zero([1, 2, 3, 4, 5, 6], 4) == [0.0, 2.0, 4.0, 6.0]  # each bucket's largest
    assert from_zero([], 5) == [0.0] * 5
    assert from_zero([3.0], 1) == [0.0]
    line = spark([15.0, 15.5], 3)
    assert len(line.plain) == 3
    assert line.plain == "▁▇█"  # near-equal values stay near-equal


def test_latency_levels_and_a_climb() -> None:
    assert [latency_level(s) for s in (0.0, 9.9, 10.0, 59.9, 60.0)] == [
        "ok",
        "ok",
        "slow",
        "slow",
        "stuck",
    ]
    assert climbing([1.0, 2.0, 3.0, 4.0])
    assert not climbing([1.0, 2.0, 2.0, 4.0])  # it held for one sample
    assert not climbing([1.0, 2.0, 3.0])  # too few samples to tell


def test_failing_functions_worst_first() -> None:
    rows = [
        FunctionRow("q", "m:ok", processed=100, failed=1),
        FunctionRow("q", "m:bad", processed=10, failed=3),
        FunctionRow("q", "m:worse", processed=10, failed=9),
        FunctionRow("q", "m:idle"),
    ]
    assert [row.function for row in failing(rows)] == ["m:worse", "m:bad"]
    assert rows[0].failure_rate == 0.01 and rows[3].failure_rate == 0.0


def test_failures_of_the_last_minute_from_the_series() -> None:
    series = Series(at=0.0, step=10.0, failed=(9.0,) * 4 + (0.5,) * 6)
    assert series.failed_in(60) == 30
    assert Series(at=0.0, step=10.0).failed_in(60) == 0


def test_attempts_log_entries_become_attempts() -> None:
    entry = {
        "attempt": 2,
        "worker": "w1",
        "started_at": 10.0,
        "ended_at": 12.5,
        "error_type": "ValueError",
        "error": "bad",
    }
    assert attempt(entry) == Attempt(2, "w1", 10.0, 12.5, "ValueError", "bad")
    assert attempt(entry).duration == 2.5
    assert attempt({"attempt": 1, "started_at": 1.0}).duration is None


def test_queue_latency_limits_and_worker_usage_and_order_reach_their_rows() -> None:
    # The library's queue stats and worker info carry the fields the panes show.
    from naq.feed import FeedEvent
    from naq.limits import QueueLimits
    from naq.monitor import QueueStats, WorkerInfo

    limits = QueueLimits(concurrency=5, rate="20/s")
    stats = QueueStats("q", 1, 0, 0, 0, 0, False, 0.0, latency=4.5, limits=limits)
    change = to_change(FeedEvent("queue", "q", stats), "nats://x")
    assert isinstance(change, Upsert)
    assert change.row == QueueRow("q", pending=1, latency=4.5, limits=limits)
    worker = WorkerInfo(
        "w", "h", 1, ["a", "b"], "idle", 2, [], 0, 0, 0.0, 0.0, 12.5, 2048, fair=True
    )
    change = to_change(FeedEvent("worker", "w", worker), "nats://x")
    assert isinstance(change, Upsert)
    row = change.row
    assert isinstance(row, WorkerRow)
    assert (row.cpu_percent, row.rss_bytes, row.queues, row.fair) == (12.5, 2048, ("a", "b"), True)


@dataclass(frozen=True)
class _Metrics:
    """Shaped like ``naq.metrics.FunctionMetrics``."""

    queue: str
    function: str
    processed: int
    failed: int = 0
    retried: int = 0
    duration_p50: float = 0.1
    duration_p95: float = 0.2
    duration_max: float = 0.3
    wait_p50: float = 0.0
    wait_p95: float = 0.0
    completed: int = 0
    series: tuple[int, ...] = (1, 2)


async def test_the_reader_turns_the_metrics_into_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[list[_Metrics]] = [
        [_Metrics("q", "m:a", 5), _Metrics("q", "m:b", 2, failed=1)],
        [_Metrics("q", "m:a", 6)],
    ]
    asked: list[dict[str, Any]] = []

    async def function_metrics(**options: Any) -> list[_Metrics]:
        asked.append(options)
        return answers.pop(0)

    async def throughput(window: float, step: float, **options: Any) -> tuple[list, list]:
        return [1.0, 2.0], [0.0, 0.5]

    library = SimpleNamespace(function_metrics=function_metrics, throughput=throughput)
    monkeypatch.setattr(live_metrics, "metrics", library)
    reader = MetricsReader(Settings.from_env(), clock=lambda: 100.0)
    reader.saw(Upsert(QueueRow("q", pending=3, latency=2.0)))
    first = await reader.read()
    assert [c.row.function for c in first if isinstance(c, Upsert)] == ["m:a", "m:b"]
    series = first[-1]
    assert isinstance(series, Series)
    assert (series.processed, series.failed, series.at) == ((1.0, 2.0), (0.0, 0.5), 100.0)
    assert series.queues["q"].pending == (3,) and series.queues["q"].latency == (2.0,)
    reader.saw(Upsert(QueueRow("q", pending=5, latency=7.0)))
    second = await reader.read()
    # m:b stopped reporting: its row goes; the queue's trend grows by a sample.
    assert Remove("function", "q/m:b") in second
    last = second[-1]
    assert isinstance(last, Series) and last.queues["q"].latency == (2.0, 7.0)
    assert asked[0]["window"] == live_metrics.FUNCTION_WINDOW
    reader.saw(Remove("queue", "q"))
    assert "q" not in (await reader.read())[-1].queues  # type: ignore[union-attr]
