"""The CLI's scheduling commands, run as ``python -m naq`` subprocesses against a real nats-server:
``list-scheduled`` (table, ``--json`` and its filters) and ``job-control`` (pause, resume, cancel,
reschedule), with one clear line and a non-zero exit for every bad input.

Schedules are made with the library and checked with ``naq.list_scheduled_jobs``; the commands of
one test run side by side (each on its own schedule) to keep the interpreter start-ups short.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import naq
from naq import Queue
from tests import jobs
from tests.helpers import cli_all

pytestmark = pytest.mark.usefixtures("nats_url")

REPO_ROOT = Path(__file__).resolve().parent.parent


async def record(schedule_id: str) -> naq.ScheduleInfo | None:
    found = await naq.list_scheduled_jobs(job_id=schedule_id)
    return found[0] if found else None


async def test_list_scheduled_json_and_filters() -> None:
    async with Queue("cli-a") as qa, Queue("cli-b") as qb:
        await qa.schedule(jobs.add, 1, 2, interval=60, job_id="every-minute")
        await qb.schedule(jobs.noop, cron="*/2 * * * *", job_id="even-minutes")
        await qa.enqueue_at(datetime(2031, 5, 4, tzinfo=timezone.utc), jobs.noop, job_id="later")
        assert await qa.pause_scheduled_job("later")

    (
        everything,
        paused,
        queue_b,
        one,
        active_a,
        nothing,
        table,
        bad_status,
    ) = await cli_all(
        ("list-scheduled", "--json"),
        ("list-scheduled", "--json", "--status", "paused"),
        ("list-scheduled", "--json", "--queue", "cli-b"),
        ("list-scheduled", "--json", "--job-id", "every-minute"),
        ("list-scheduled", "--json", "-q", "cli-a", "-s", "active"),
        ("list-scheduled", "--json", "--queue", "cli-c"),
        ("list-scheduled", "--detailed"),
        ("list-scheduled", "--status", "sleeping"),
    )
    assert everything.ids() == ["even-minutes", "every-minute", "later"]
    by_id = {item["job_id"]: item for item in everything.json()}  # type: ignore[union-attr]
    minute = by_id["every-minute"]
    assert minute["queue"] == "cli-a" and minute["function"] == "tests.jobs:add"
    assert minute["interval"] == 60 and minute["cron"] is None and minute["args"] == [1, 2]
    assert minute["status"] == "active" and minute["runs"] == 0
    assert (
        by_id["even-minutes"]["cron"] == "*/2 * * * *" and by_id["even-minutes"]["queue"] == "cli-b"
    )
    assert by_id["later"]["status"] == "paused"
    assert by_id["later"]["next_run"] == datetime(2031, 5, 4, tzinfo=timezone.utc).timestamp()

    assert paused.ids() == ["later"]
    assert queue_b.ids() == ["even-minutes"]
    assert one.ids() == ["every-minute"]
    assert active_a.ids() == ["every-minute"]
    assert nothing.json() == []

    assert table.code == 0, table
    for text in ("3 scheduled job(s)", "every-minute", "every 60s", "cron */2 * * * *", "paused"):
        assert text in table.out, (text, table.out)
    bad_status.assert_one_line_error("sleeping")


async def test_job_control_changes_the_records() -> None:
    async with Queue("cli") as queue:
        for name in ("to-pause", "to-resume", "to-interval", "to-cron", "to-next-run", "to-cancel"):
            await queue.schedule(jobs.noop, interval=60, job_id=name)
        assert await queue.pause_scheduled_job("to-resume")

    before = time.time()
    results = await cli_all(
        ("job-control", "to-pause", "pause"),
        ("job-control", "to-resume", "resume"),
        ("job-control", "to-interval", "reschedule", "--interval", "5", "--repeat", "4"),
        ("job-control", "to-cron", "reschedule", "--cron", "*/2 * * * *"),
        ("job-control", "to-next-run", "reschedule", "--next-run", "2030-01-01T00:00:00Z"),
        ("job-control", "to-cancel", "cancel"),
    )
    after = time.time()
    for result in results:
        assert result.code == 0, result
        assert "Traceback" not in result.err
    assert "to-pause paused" in results[0].out
    assert "to-cancel cancelled" in results[5].out

    assert (await record("to-pause")).status == "paused"  # type: ignore[union-attr]
    assert (await record("to-resume")).status == "active"  # type: ignore[union-attr]

    interval = await record("to-interval")
    assert interval is not None
    assert interval.interval == 5 and interval.repeat == 4 and interval.cron is None
    assert before + 5 <= interval.next_run <= after + 5

    cron = await record("to-cron")
    assert cron is not None and cron.cron == "*/2 * * * *" and cron.interval is None
    due = datetime.fromtimestamp(cron.next_run, tz=timezone.utc)
    assert due.minute % 2 == 0 and due.second == 0 and before < cron.next_run <= after + 120

    next_run = await record("to-next-run")
    assert next_run is not None
    assert next_run.next_run == datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()
    assert next_run.interval == 60

    assert await record("to-cancel") is None
    assert sorted(i.job_id for i in await naq.list_scheduled_jobs()) == [
        "to-cron",
        "to-interval",
        "to-next-run",
        "to-pause",
        "to-resume",
    ]


async def test_job_control_refuses_bad_input_with_one_line() -> None:
    async with Queue("cli") as queue:
        await queue.schedule(jobs.noop, interval=60, job_id="kept")
    stored = await record("kept")

    bad_cron, bad_iso, negative, unknown_action, nothing_to_do, *unknown = await cli_all(
        ("job-control", "kept", "reschedule", "--cron", "nope nope"),
        ("job-control", "kept", "reschedule", "--next-run", "tomorrow-ish"),
        ("job-control", "kept", "reschedule", "--interval", "-5"),
        ("job-control", "kept", "explode"),
        ("job-control", "kept", "reschedule"),
        ("job-control", "no-such-job", "pause"),
        ("job-control", "no-such-job", "resume"),
        ("job-control", "no-such-job", "cancel"),
        ("job-control", "no-such-job", "reschedule", "--interval", "5"),
    )
    bad_cron.assert_one_line_error("nope nope")
    bad_iso.assert_one_line_error("tomorrow-ish")
    negative.assert_one_line_error("-5")
    unknown_action.assert_one_line_error("explode")
    nothing_to_do.assert_one_line_error("--interval")
    assert len(unknown) == 4
    for result in unknown:
        result.assert_one_line_error("no-such-job")
    # None of it changed the schedule.
    assert await record("kept") == stored
