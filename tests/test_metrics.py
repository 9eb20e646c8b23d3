"""Metrics: what workers count and report, what function_metrics, throughput and
``naq metrics`` read back, and every attempt of a job kept in its status."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import nats
import pytest

import naq
from naq.broker import Broker
from naq.errors import ConfigurationError
from naq.metrics import (
    DURATION_BUCKETS,
    FunctionCounts,
    MetricsReport,
    percentile,
    read_reports,
    report_encoder,
)
from naq.models import (
    MAX_EARLIER_ATTEMPTS,
    AttemptEntry,
    JobStatus,
    StatusRecord,
    attempts_before_next,
)
from naq.results import attempts_log
from naq.settings import Settings, get_settings
from tests import jobs
from tests.helpers import (
    StatusWatch,
    cli_all,
    naq_cli,
    prefix,
    running_worker,
    wait_until,
)

Q = "metered"
SLOTS = len(DURATION_BUCKETS) + 1


def settings(interval: float) -> Settings:
    """This test's settings with metrics reported every ``interval`` seconds."""
    return get_settings().replace(metrics_interval=interval)


def totals(reports: list[MetricsReport]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (queue, function)'s counts added up over ``reports``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for report in reports:
        for row in report.rows:
            total = found.setdefault(
                (row.queue, row.function),
                {
                    "processed": 0,
                    "completed": 0,
                    "failed": 0,
                    "retried": 0,
                    "durations": [0] * SLOTS,
                    "waits": [0] * SLOTS,
                },
            )
            for name in ("processed", "completed", "failed", "retried"):
                total[name] += getattr(row, name)
            total["durations"] = [
                a + b for a, b in zip(total["durations"], row.duration_counts, strict=True)
            ]
            total["waits"] = [a + b for a, b in zip(total["waits"], row.wait_counts, strict=True)]
    return found


def processed(reports: list[MetricsReport]) -> int:
    return sum(row.processed for report in reports for row in report.rows)


def slot(seconds: float) -> int:
    """The bucket slot a duration of ``seconds`` is counted in."""
    return next((i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound), SLOTS - 1)


def row(queue: str, function: str, done: int, failed: int = 0, seconds: float = 0.01) -> Any:
    counts = [0] * SLOTS
    counts[slot(seconds)] = done
    return FunctionCounts(
        queue=queue,
        function=function,
        processed=done,
        completed=done - failed,
        failed=failed,
        duration_counts=counts,
        duration_sum=done * seconds,
        duration_max=seconds,
        wait_counts=list(counts),
        wait_sum=done * seconds,
        wait_max=seconds,
    )


async def publish(report: MetricsReport) -> None:
    """Store ``report`` as a worker would."""
    broker = await Broker.connect(get_settings())
    data = report_encoder.encode(report)
    await broker.publish_metrics(report.worker, data, f"{report.worker}:{report.ended_at}", 5.0)


def report(ended_at: float, rows: list[Any], started_at: float | None = None) -> MetricsReport:
    return MetricsReport(
        worker="w1",
        host="h",
        pid=1,
        started_at=ended_at - 5 if started_at is None else started_at,
        ended_at=ended_at,
        rows=rows,
    )


# -- percentiles, bad windows, carried attempts: no server -------------------------------------


def test_percentile_interpolates_inside_its_bucket_and_never_passes_the_max() -> None:
    counts = [0] * SLOTS
    counts[slot(0.2)] = 10  # ten values in (0.1, 0.25]
    assert percentile(counts, 0.5, 0.25) == pytest.approx(0.175)
    assert percentile(counts, 0.5, 0.2) == pytest.approx(0.15)  # the bucket ends at the max
    assert percentile(counts, 0.95, 0.2) <= 0.2
    counts[slot(0.001)] = 10  # and ten in [0, 0.001]
    assert percentile(counts, 0.25, 0.2) == pytest.approx(0.0005)
    assert 0.1 < percentile(counts, 0.75, 0.2) <= 0.2
    over = [0] * SLOTS
    over[-1] = 4  # above the last bound: up to the max
    assert percentile(over, 0.5, 400.0) == pytest.approx(350.0)
    assert percentile([0] * SLOTS, 0.5, 0.0) == 0.0


@pytest.mark.parametrize("window", [0, -1, "abc", math.nan, math.inf, True, None])
async def test_a_bad_window_is_refused_naming_it(window: Any) -> None:
    with pytest.raises(ConfigurationError, match="window=") as caught:
        await naq.function_metrics(window=window)
    assert repr(window) in str(caught.value)
    with pytest.raises(ConfigurationError, match="window="):
        await naq.throughput(window=window)


async def test_a_bad_step_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="step=0"):
        await naq.throughput(window=60, step=0)
    with pytest.raises(ConfigurationError, match="steps"):
        await naq.throughput(window=86_400, step=0.001)


def test_a_bad_metrics_interval_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="NAQ_METRICS_INTERVAL=-1"):
        Settings.from_env({"NAQ_METRICS_INTERVAL": "-1"})
    with pytest.raises(ConfigurationError, match="metrics_retention=0"):
        Settings(metrics_retention=0)
    assert Settings.from_env({"NAQ_METRICS_INTERVAL": "0"}).metrics_interval == 0


def status(**fields: Any) -> StatusRecord:
    base: dict[str, Any] = {
        "job_id": "j1",
        "queue": Q,
        "function": "f",
        "enqueued_at": 1.0,
        "updated_at": 1.0,
    }
    return StatusRecord(**(base | fields))


def test_the_next_attempt_carries_the_ended_one_and_a_crashed_one_without_its_end() -> None:
    failed = status(
        status=JobStatus.RETRY,
        attempt=1,
        worker="w1",
        started_at=2.0,
        ended_at=3.0,
        error="ValueError: x",
        error_type="ValueError",
    )
    (first,) = attempts_before_next(failed)
    assert first == AttemptEntry(
        attempt=1,
        worker="w1",
        started_at=2.0,
        ended_at=3.0,
        error_type="ValueError",
        error="ValueError: x",
    )
    # Its worker was killed while attempt 2 ran: the attempt is kept, with no end.
    crashed = status(
        status=JobStatus.RUNNING, attempt=2, worker="w2", started_at=4.0, earlier_attempts=[first]
    )
    carried = attempts_before_next(crashed)
    assert [(a.attempt, a.worker, a.ended_at, a.error) for a in carried] == [
        (1, "w1", 3.0, "ValueError: x"),
        (2, "w2", None, None),
    ]
    # Killed before its running status was written: the attempt left no trace.
    assert attempts_before_next(status(status=JobStatus.PENDING)) == []
    # The view: the earlier ones, then the current one.
    running = status(
        status=JobStatus.RUNNING, attempt=3, worker="w3", started_at=5.0, earlier_attempts=carried
    )
    assert [a["attempt"] for a in attempts_log(running)] == [1, 2, 3]
    assert attempts_log(running)[-1]["ended_at"] is None


def test_a_job_retried_without_end_keeps_its_newest_attempts_and_short_errors() -> None:
    record = status(status=JobStatus.PENDING)
    for attempt in range(1, MAX_EARLIER_ATTEMPTS + 20):
        record = status(
            status=JobStatus.RETRY,
            attempt=attempt,
            started_at=float(attempt),
            ended_at=attempt + 0.5,
            error="E: " + "x" * 5000,
            earlier_attempts=attempts_before_next(record),
        )
    carried = attempts_before_next(record)
    assert len(carried) == MAX_EARLIER_ATTEMPTS
    assert carried[-1].attempt == MAX_EARLIER_ATTEMPTS + 19
    assert all(len(a.error or "") <= 1000 for a in carried)


# -- the worker's counts and reports -------------------------------------------------------------


async def test_counts_match_the_jobs_run_and_a_graceful_stop_sends_them(nats_url: str) -> None:
    # An interval longer than the test: all that is reported is what the stop sends.
    config = settings(3600)
    queue = naq.Queue(Q, settings=config)
    fine = [await queue.enqueue(jobs.add, i, 1) for i in range(7)]
    failing = [await queue.enqueue(jobs.fail, "no", max_retries=1, retry_delay=0) for _ in "ab"]
    slow = [await queue.enqueue(jobs.async_sleep, 0.12) for _ in range(3)]
    async with running_worker(Q, settings=config, concurrency=4) as worker:
        for job in fine + failing + slow:
            await naq.wait_for_job(job.job_id, timeout=20, settings=config)
        assert await read_reports(0.0, settings=config) == []  # nothing sent while it runs
    reports = await read_reports(0.0, settings=config)
    assert len(reports) == 1  # one message for every attempt of the interval
    (sent,) = reports
    assert sent.worker == worker.name and sent.pid == os.getpid()
    assert sent.started_at <= sent.ended_at
    found = totals(reports)
    add, fail, sleep = (
        found[(Q, "tests.jobs:add")],
        found[(Q, "tests.jobs:fail")],
        found[(Q, "tests.jobs:async_sleep")],
    )
    assert (add["processed"], add["completed"], add["failed"], add["retried"]) == (7, 7, 0, 0)
    # Two jobs, two attempts each: the first retried, the second failed for good.
    assert (fail["processed"], fail["completed"], fail["failed"], fail["retried"]) == (4, 0, 2, 2)
    assert (sleep["processed"], sleep["completed"]) == (3, 3)
    for total in (add, fail, sleep):
        assert sum(total["durations"]) == sum(total["waits"]) == total["processed"]
    # 0.12 s sleeps land in (0.1, 0.25].
    assert sleep["durations"][slot(0.2)] == 3

    by_function = {m.function: m for m in await naq.function_metrics(Q, settings=config)}
    assert set(by_function) == {"tests.jobs:add", "tests.jobs:fail", "tests.jobs:async_sleep"}
    assert (by_function["tests.jobs:fail"].failed, by_function["tests.jobs:fail"].retried) == (2, 2)
    metrics = by_function["tests.jobs:async_sleep"]
    assert (metrics.processed, metrics.completed, metrics.failed) == (3, 3, 0)
    assert 0.1 < metrics.duration_p50 <= metrics.duration_p95 <= metrics.duration_max
    assert 0.12 <= metrics.duration_max < 0.25
    assert 0 < metrics.wait_p50 <= metrics.wait_p95
    assert sum(metrics.series) == 3


async def test_reports_go_out_each_interval_and_only_when_something_ran(nats_url: str) -> None:
    config = settings(0.1)
    queue = naq.Queue(Q, settings=config)
    async with running_worker(Q, settings=config) as worker:
        first = [await queue.enqueue(jobs.add, i, 1) for i in range(3)]
        for job in first:
            await naq.wait_for_job(job.job_id, timeout=10, settings=config)
        # Sent by the worker's own timer while it runs (no stop): a bounded wait for it.
        await wait_until(lambda: read_reports_processed(config, 3))
        second = [await queue.enqueue(jobs.add, i, 2) for i in range(2)]
        for job in second:
            await naq.wait_for_job(job.job_id, timeout=10, settings=config)
        await wait_until(lambda: read_reports_processed(config, 5))
        metering = worker._state.metering  # type: ignore[union-attr]
        assert metering.published >= 2 and metering.failed_publishes == 0
    reports = await read_reports(0.0, settings=config)
    assert processed(reports) == 5
    # Idle intervals passed (the test took many of them): none of them sent a report.
    assert all(r.rows and all(row.processed for row in r.rows) for r in reports)
    assert len(reports) == metering.published


async def read_reports_processed(config: Settings, expected: int) -> bool:
    return processed(await read_reports(0.0, settings=config)) >= expected


async def test_a_report_that_could_not_be_stored_goes_with_the_next(nats_url: str) -> None:
    config = settings(0.1)
    queue = naq.Queue(Q, settings=config)
    stream = f"{prefix()}_metrics"
    async with running_worker(Q, settings=config) as worker:
        metering = worker._state.metering  # type: ignore[union-attr]
        job = await queue.enqueue(jobs.add, 1, 1)
        await naq.wait_for_job(job.job_id, timeout=10, settings=config)
        await wait_until(lambda: read_reports_processed(config, 1))
        # The stream goes: the next report finds nowhere to be stored.
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()
        assert await read_reports(0.0, settings=config) == []
        lost = [await queue.enqueue(jobs.add, i, 1) for i in range(2)]
        for job in lost:
            await naq.wait_for_job(job.job_id, timeout=10, settings=config)
        await wait_until(lambda: metering.failed_publishes >= 1)
        # Kept and sent again: the worker makes the stream anew for it.
        await wait_until(lambda: read_reports_processed(config, 2))
        last = await queue.enqueue(jobs.add, 5, 5)
        await naq.wait_for_job(last.job_id, timeout=10, settings=config)
    # Neither lost nor counted twice: the two that failed to go, then the last one.
    assert processed(await read_reports(0.0, settings=config)) == 3


async def test_an_attempt_cancelled_while_it_runs_counts_as_processed(nats_url: str) -> None:
    config = settings(3600)
    job = await naq.Queue(Q, settings=config).enqueue(jobs.async_sleep, 30)
    async with StatusWatch(nats_url, Q) as watch, running_worker(Q, settings=config):
        await watch.until(lambda e: e.job_id == job.job_id and e.status == "running")
        assert await naq.cancel_job(job.job_id, settings=config)
        await naq.wait_for_job(job.job_id, timeout=10, settings=config)
    (metrics,) = await naq.function_metrics(settings=config)
    assert (metrics.processed, metrics.completed, metrics.failed, metrics.retried) == (1, 0, 0, 0)


async def test_metrics_off_sends_nothing(nats_url: str) -> None:
    config = settings(0)
    queue = naq.Queue(Q, settings=config)
    async with running_worker(Q, settings=config) as worker:
        job = await queue.enqueue(jobs.add, 1, 1)
        await naq.wait_for_job(job.job_id, timeout=10, settings=config)
        assert not worker._state.metering.enabled  # type: ignore[union-attr]
    assert await read_reports(0.0, settings=config) == []
    assert await naq.function_metrics(settings=config) == []


# -- reading: windows, queues, series ---------------------------------------------------------


async def test_function_metrics_keeps_to_its_window_and_queue(nats_url: str) -> None:
    now = time.time()
    await publish(report(now - 1000, [row("q1", "m:old", 4)]))
    await publish(report(now - 2, [row("q1", "m:f", 3, failed=1), row("q2", "m:g", 2)]))
    await publish(report(now - 1, [row("q1", "m:f", 2, seconds=0.3)]))
    recent = await naq.function_metrics()
    assert [(m.queue, m.function, m.processed, m.failed) for m in recent] == [
        ("q1", "m:f", 5, 1),
        ("q2", "m:g", 2, 0),
    ]
    f = recent[0]
    assert f.completed == 4 and f.duration_max == pytest.approx(0.3)
    assert f.duration_p50 <= f.duration_p95 <= f.duration_max
    assert [m.function for m in await naq.function_metrics("q2")] == ["m:g"]
    assert [m.function for m in await naq.function_metrics(window=2000)] == [
        "m:f",
        "m:old",
        "m:g",
    ]
    assert await naq.function_metrics("nothing_here") == []
    # Only that queue's rows come back from read_reports too.
    assert {r.queue for rep in await read_reports(now - 10, queue="q2") for r in rep.rows} == {"q2"}


async def test_reports_are_read_from_a_start_time_not_from_the_stream_start(
    nats_url: str,
) -> None:
    broker = await Broker.connect(get_settings())
    await publish(report(time.time(), [row("q1", "m:before", 1)]))
    start = time.time()
    await publish(report(time.time(), [row("q1", "m:after", 1)]))
    names = broker.names
    found = await broker.read_since(
        names.metrics_stream, names.metrics_subject_prefix + ".*", start
    )
    assert [b"m:after" in data for data in found] == [True]


async def test_throughput_spreads_each_report_over_its_interval(nats_url: str) -> None:
    now = time.time()
    await publish(report(now - 15, [row(Q, "m:f", 20, failed=4)], started_at=now - 25))
    done, failed = await naq.throughput(window=60, step=10)
    assert len(done) == len(failed) == 6
    assert sum(done) * 10 == pytest.approx(20)
    assert sum(failed) * 10 == pytest.approx(4)
    assert done[3] == pytest.approx(1.0, abs=0.05) and done[4] == pytest.approx(1.0, abs=0.05)
    assert done[:3] == [0.0, 0.0, 0.0] and done[5] == 0.0
    assert await naq.throughput(window=60, step=10, queue="other") == ([0.0] * 6, [0.0] * 6)
    (metrics,) = await naq.function_metrics(window=300)
    assert sum(metrics.series) == 20 and metrics.series[28] == 20  # ended 15 s ago: slot 28


def test_the_sync_twins(nats_url: str) -> None:
    assert naq.function_metrics_sync(window=60) == []
    assert naq.throughput_sync(window=30, step=10) == ([0.0] * 3, [0.0] * 3)


# -- every attempt of a job ------------------------------------------------------------------


async def test_a_job_that_failed_twice_then_succeeded_tells_every_attempt(
    nats_url: str, tmp_path: Path
) -> None:
    queue = naq.Queue(Q)
    job = await queue.enqueue(jobs.flaky, str(tmp_path / "count"), 2, max_retries=2)
    async with running_worker(Q) as worker:
        info = await naq.wait_for_job(job.job_id, timeout=20)
        # Read again once the final status is surely there: the same story either way.
        await wait_until(lambda: final_status(job.job_id))
        again = await naq.get_job(job.job_id)
    assert info.status == again.status == "completed"
    for log in (info.attempts_log, again.attempts_log):
        assert [a["attempt"] for a in log] == [1, 2, 3]
        assert [a["error"] for a in log] == [
            "RuntimeError: flaky failure 1",
            "RuntimeError: flaky failure 2",
            None,
        ]
        assert [a["error_type"] for a in log] == ["RuntimeError", "RuntimeError", None]
        assert {a["worker"] for a in log} == {worker.name}
        times = [t for a in log for t in (a["started_at"], a["ended_at"])]
        assert times == sorted(times) and None not in times
        assert set(log[0]) == {"attempt", "worker", "started_at", "ended_at", "error_type", "error"}


async def final_status(job_id: str) -> bool:
    broker = await Broker.connect(get_settings())
    record = await broker.read_status(job_id)
    return record is not None and record.status == JobStatus.COMPLETED


async def test_a_first_time_success_has_one_attempt(nats_url: str) -> None:
    queue = naq.Queue(Q)
    job = await queue.enqueue(jobs.add, 2, 3)
    async with running_worker(Q) as worker:
        info = await naq.wait_for_job(job.job_id, timeout=10)
    (only,) = info.attempts_log
    assert only["attempt"] == 1 and only["worker"] == worker.name
    assert only["error"] is None and only["error_type"] is None
    assert only["started_at"] <= only["ended_at"]


async def test_a_job_cancelled_while_it_waits_to_retry_keeps_its_failed_attempt(
    nats_url: str, tmp_path: Path
) -> None:
    queue = naq.Queue(Q)
    job = await queue.enqueue(jobs.flaky, str(tmp_path / "count"), 5, max_retries=3, retry_delay=60)
    async with StatusWatch(nats_url, Q) as watch, running_worker(Q):
        await watch.until(lambda e: e.job_id == job.job_id and e.status == "retry")
        assert await naq.cancel_job(job.job_id)
    info = await naq.get_job(job.job_id)
    assert info.status == "cancelled"
    (only,) = info.attempts_log
    assert (only["attempt"], only["error"], only["error_type"]) == (
        1,
        "RuntimeError: flaky failure 1",
        "RuntimeError",
    )
    assert only["started_at"] <= only["ended_at"] < info.ended_at


# -- the CLI -----------------------------------------------------------------------------------


async def test_naq_metrics_fits_80_columns_and_prints_json(nats_url: str) -> None:
    now = time.time()
    await publish(
        report(
            now - 1,
            [
                row("billing-queue", "app.tasks.invoices:render_monthly_invoice", 1234, 7, 0.3),
                row("emails", "app.tasks:send", 56),
            ],
        )
    )
    result = await naq_cli("metrics", env=dict(os.environ, COLUMNS="80"))
    result.assert_ok("billing-queue", "emails", "1234")
    assert all(len(line) <= 80 for line in result.out.splitlines()), result.out
    assert "processed" in result.out and "p95" in result.out
    data = (await naq_cli("metrics", "--json", "-q", "emails", "--window", "60")).json()
    assert [(d["queue"], d["function"], d["processed"]) for d in data] == [
        ("emails", "app.tasks:send", 56)
    ]
    assert set(data[0]) >= {"duration_p50", "duration_p95", "wait_p95", "series", "retried"}
    assert json.loads(json.dumps(data))  # plain JSON types


async def test_naq_metrics_with_nothing_reported_says_so(nats_url: str) -> None:
    result = await naq_cli("metrics")
    result.assert_ok("No jobs ended in the last 300s.")


async def test_naq_metrics_refuses_a_bad_window_in_one_line(nats_url: str) -> None:
    windows = ("abc", "0", "-5")
    for window, result in zip(
        windows, await cli_all(*(("metrics", "--window", w) for w in windows)), strict=True
    ):
        assert result.code == 1, result
        result.assert_one_line_error("window", window)
