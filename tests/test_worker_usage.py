"""Heartbeats carry the worker process's CPU % and resident memory."""

from __future__ import annotations

import os
import re
import time

import pytest

import naq
from naq.models import WorkerRecord, record_encoder, worker_decoder
from naq.worker.usage import ProcessUsage
from tests.helpers import naq_cli, running_worker


def test_cpu_percent_is_the_share_of_a_core_used_since_the_previous_sample() -> None:
    usage = ProcessUsage()
    started = time.process_time()
    while time.process_time() - started < 0.05:  # CPU work, not waiting
        pass
    busy = usage.cpu_percent()
    assert 5.0 < busy <= 100.0 * (os.cpu_count() or 1)
    assert usage.cpu_percent() >= 0.0


def test_rss_is_this_process_resident_memory() -> None:
    rss = ProcessUsage().rss_bytes()
    assert rss is not None and 1_000_000 < rss < 64 * 2**30
    # Memory taken shows: 64 MiB written to (so resident, not just reserved).
    block = b"x" * (64 * 2**20)
    grown = ProcessUsage().rss_bytes()
    assert grown is not None and grown >= rss + 32 * 2**20
    del block


def test_a_heartbeat_from_before_the_fields_existed_still_decodes() -> None:
    old = {
        "name": "w",
        "host": "h",
        "pid": 1,
        "queues": ["q"],
        "status": "idle",
        "concurrency": 1,
        "started_at": 1.0,
        "heartbeat_at": 2.0,
    }
    record = worker_decoder.decode(record_encoder.encode(old))
    assert (record.cpu_percent, record.rss_bytes) == (None, None)
    info = naq.WorkerInfo.from_record(record)
    assert (info.cpu_percent, info.rss_bytes) == (None, None)
    new = WorkerRecord(**old, cpu_percent=1.5, rss_bytes=10)
    assert worker_decoder.decode(record_encoder.encode(new)).rss_bytes == 10


@pytest.mark.usefixtures("nats_url")
async def test_a_live_worker_reports_its_cpu_and_memory_to_the_listing_and_the_cli() -> None:
    async with running_worker("usage-q", worker_name="usage-worker", heartbeat_interval=0.2):
        (info,) = await naq.list_workers()
        table, as_json = await naq_cli("workers"), await naq_cli("workers", "--json")
    assert info.name == "usage-worker"
    assert info.rss_bytes is not None and info.rss_bytes > 0
    assert info.cpu_percent is not None and info.cpu_percent >= 0.0
    (row,) = as_json.json()
    assert row["rss_bytes"] > 0 and row["cpu_percent"] >= 0.0
    assert "cpu" in table.out and "rss" in table.out, table.out
    (line,) = [line for line in table.out.splitlines() if "usage-worker" in line]
    assert re.search(r"\s\d+(\.\d)?%\s", line) and re.search(r"\s\d+(\.\d)?[KMG]\s", line), line
