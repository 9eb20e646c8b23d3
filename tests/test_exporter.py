"""``naq exporter``: /metrics over real HTTP, parsed with Prometheus' own text parser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from naq import JobStatus, Queue
from naq.exporter import DURATION_BUCKETS, Exporter
from naq.server import EmbeddedServer, free_port
from naq.settings import get_settings
from tests import jobs
from tests.helpers import REPO_ROOT, cli_all, prefix, running_worker, wait_until

#: (metric sample name, sorted labels) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


async def scrape(port: int) -> Samples:
    """GET /metrics and parse it as Prometheus does."""
    text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[Exporter, int]]:
    """An exporter serving on a free port (read NATS with ``await exporter.refresh()``)."""
    exporter = Exporter(get_settings(), **options)
    port = exporter.serve("127.0.0.1", 0)
    try:
        yield exporter, port
    finally:
        await exporter.close()


@contextlib.asynccontextmanager
async def metrics_stream(nats_url: str) -> AsyncIterator[Any]:
    """The metrics stream, as the workers write to it; yields its JetStream context."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=f"{prefix()}_metrics", subjects=[f"{prefix()}.metrics.>"])
        yield js
    finally:
        await nc.close()


def counts(*durations: float) -> list[int]:
    """Per-bucket counts of ``durations`` (the last slot above every bound)."""
    slots = [0] * (len(DURATION_BUCKETS) + 1)
    for duration in durations:
        slots[next((i for i, b in enumerate(DURATION_BUCKETS) if duration <= b), -1)] += 1
    return slots


def report(worker: str, *rows: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "worker": worker,
            "host": "h",
            "pid": 1,
            "started_at": 1.0,
            "ended_at": 2.0,
            "rows": list(rows),
        }
    ).encode()


def row(queue: str, function: str, durations: list[float], **fields: Any) -> dict[str, Any]:
    return {
        "queue": queue,
        "function": function,
        "processed": len(durations),
        "duration_counts": counts(*durations),
        "duration_sum": sum(durations),
        "duration_max": max(durations, default=0.0),
        "wait_counts": counts(*[0.002] * len(durations)),
        "wait_sum": 0.002 * len(durations),
        "wait_max": 0.002,
        **fields,
    }


@pytest.mark.usefixtures("nats_url")
async def test_gauges_show_the_queues_dead_letters_and_workers() -> None:
    async with Queue("exp-waiting") as waiting, Queue("exp-paused") as paused:
        for _ in range(3):
            await waiting.enqueue(jobs.noop)
        await paused.pause()
        async with running_worker("exp-run", concurrency=4, worker_name="exp-worker"):
            failed = await Queue("exp-run").enqueue(jobs.fail)
            assert (await failed.wait(timeout=10)).status == JobStatus.FAILED
            async with serving() as (exporter, port):
                assert await exporter.refresh()
                samples = await scrape(port)

    assert value(samples, "naq_up") == 1
    assert value(samples, "naq_queue_pending", queue="exp-waiting") == 3
    assert value(samples, "naq_queue_latency_seconds", queue="exp-waiting") > 0
    assert value(samples, "naq_queue_paused", queue="exp-waiting") == 0
    assert value(samples, "naq_queue_paused", queue="exp-paused") == 1
    assert value(samples, "naq_queue_pending", queue="exp-run") == 0
    assert value(samples, "naq_queue_running", queue="exp-run") == 0
    assert value(samples, "naq_dead_letters", queue="exp-run") == 1
    assert value(samples, "naq_dead_letters", queue="exp-waiting") == 0
    assert value(samples, "naq_workers", status="idle") == 1
    assert value(samples, "naq_workers", status="busy") == 0
    assert value(samples, "naq_worker_slots") == 4
    assert value(samples, "naq_worker_busy_slots") == 0


async def test_counters_and_histograms_sum_every_report_and_never_go_back(nats_url: str) -> None:
    q, fn = "exp-sums", "tests.jobs:add"
    async with metrics_stream(nats_url) as js:
        subject = f"{prefix()}.metrics.w1"
        # Reports in the window before the exporter starts are counted.
        await js.publish(subject, report("w1", row(q, fn, [0.003, 0.2], failed=1, retried=2)))
        first = await js.publish(subject, report("w1", row(q, fn, [7.0], completed=1)))
        await js.publish(subject, b"not a report")
        async with serving() as (exporter, port):
            assert await exporter.refresh()
            before = await scrape(port)
            labels = {"queue": q, "function": fn}
            assert value(before, "naq_jobs_processed_total", **labels) == 3
            assert value(before, "naq_jobs_failed_total", **labels) == 1
            assert value(before, "naq_jobs_retried_total", **labels) == 2
            assert value(before, "naq_jobs_completed_total", **labels) == 1
            assert value(before, "naq_job_duration_seconds_count", **labels) == 3
            assert value(before, "naq_job_duration_seconds_sum", **labels) == pytest.approx(7.203)
            assert value(before, "naq_job_duration_seconds_bucket", **labels, le="0.005") == 1
            assert value(before, "naq_job_duration_seconds_bucket", **labels, le="5.0") == 2
            assert value(before, "naq_job_duration_seconds_bucket", **labels, le="+Inf") == 3
            assert value(before, "naq_job_wait_seconds_bucket", **labels, le="0.0025") == 3
            assert value(before, "naq_job_wait_seconds_sum", **labels) == pytest.approx(0.006)

            # The worker restarts under a new name, with figures of its own; the first
            # report leaves the retention window. Nothing goes down, each report counts once.
            await js.publish(f"{prefix()}.metrics.w2", report("w2", row(q, fn, [0.5])))
            await js.delete_msg(f"{prefix()}_metrics", first.seq)
            assert await exporter.refresh()
            assert await exporter.refresh()  # nothing new: nothing added twice
            after = await scrape(port)
    for (name, sample_labels), old in before.items():
        if name.startswith(("naq_jobs_", "naq_job_")):
            assert after[(name, sample_labels)] >= old, name
    assert value(after, "naq_jobs_processed_total", **labels) == 4
    assert value(after, "naq_job_duration_seconds_bucket", **labels, le="0.5") == 3
    assert value(after, "naq_job_duration_seconds_sum", **labels) == pytest.approx(7.703)


async def test_with_nats_down_it_keeps_serving_the_last_values_and_naq_up_0(
    fresh_server: EmbeddedServer,
) -> None:
    async with Queue("exp-down") as queue:
        await queue.enqueue(jobs.noop)
        async with serving(timeout=1.0) as (exporter, port):
            assert await exporter.refresh()
            assert value(await scrape(port), "naq_up") == 1
            fresh_server.stop()
            assert not await exporter.refresh()
            down = await scrape(port)
            assert value(down, "naq_up") == 0
            assert value(down, "naq_queue_pending", queue="exp-down") == 1
            fresh_server.start()
            # Back once the client has reconnected (nothing to await for that but a read).
            await wait_until(exporter.refresh, timeout=20, interval=0.2)
            assert value(await scrape(port), "naq_up") == 1


async def test_naq_exporter_serves_metrics_and_refuses_bad_options(nats_url: str) -> None:
    bad_port, bad_interval = await cli_all(
        ("exporter", "--port", "70000"), ("exporter", "--interval", "0")
    )
    bad_port.assert_one_line_error("70000")
    bad_interval.assert_one_line_error("interval=0.0")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "naq", "exporter", "--port", str(port), "--interval", "0.2"],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def up() -> bool:
            try:
                return value(await scrape(port), "naq_up") == 1
            except OSError:
                return False  # not listening yet

        await wait_until(up, timeout=20, interval=0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 10) == 130


async def test_counts_a_real_workers_reports(nats_url: str) -> None:
    # End to end: a worker runs jobs, its reports reach the exporter's counters.
    q = "exp-real"
    settings = get_settings().replace(metrics_interval=0.2)
    async with Queue(q) as queue:
        done = [await queue.enqueue(jobs.add, i, 1) for i in range(3)]
        failed = await queue.enqueue(jobs.fail, "no")
        async with running_worker(q, settings=settings):
            for job in [*done, failed]:
                await job.wait(timeout=20)
        # The worker stopped gracefully: its last interval is in the stream.
        async with serving() as (exporter, port):
            assert await exporter.refresh()
            samples = await scrape(port)
    add = {"queue": q, "function": "tests.jobs:add"}
    fail = {"queue": q, "function": "tests.jobs:fail"}
    assert value(samples, "naq_jobs_processed_total", **add) == 3
    assert value(samples, "naq_jobs_completed_total", **add) == 3
    assert value(samples, "naq_jobs_failed_total", **fail) == 1
    assert value(samples, "naq_job_duration_seconds_count", **add) == 3
