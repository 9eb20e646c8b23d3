"""The app driven by keys over the real :class:`~naq_tui.live.LiveService` (Pilot, headless).

Every test runs ``NaqApp(LiveService(Settings.from_env()))`` against a real nats-server and
proves each action by what it changed in NATS, read back through the library (schedules,
queue stats, job records, dead letters), never through the app's own state. The app is only
asked what it shows: rows, dialogs, notifications and the connection indicator.

Nothing is synchronised with a sleep: the app and the library are polled until a condition
holds (:func:`wait_until`), or a job's outcome is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Group
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label, Static

import naq
from naq import JobStatus, Queue
from naq.server import EmbeddedServer
from naq.settings import Settings
from naq_tui.app import NaqApp
from naq_tui.live import LiveService
from naq_tui.screens.confirm import ConfirmScreen
from naq_tui.screens.limits import LimitsScreen
from naq_tui.screens.reschedule import RescheduleScreen
from naq_tui.state import pane_number
from naq_tui.widgets.header import HeaderBar
from naq_tui.widgets.overview import Overview
from tests import jobs
from tests.helpers import running_worker

SIZE = (120, 36)
#: How long any one condition may take: a worker's start, a feed's catch-up, a reconnect.
TIMEOUT = 15.0
#: Seconds between two polls of a condition.
POLL = 0.05

Check = Callable[[], Any]


# The session nats-server; the reconnect test's ``fresh_server`` wins over it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("nats_url")


@pytest.fixture(autouse=True)
def _lasting_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests read the notifications on screen: none may expire while a slow machine runs one."""
    monkeypatch.setattr(NaqApp, "NOTIFICATION_TIMEOUT", 10 * TIMEOUT)


@pytest.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    """Close the library's shared connections of the test's loop before the loop goes."""
    yield
    await naq.disconnect()


async def wait_until(
    pilot: Pilot[None] | None, check: Check, what: str, timeout: float = TIMEOUT
) -> Any:
    """Poll ``check()`` (sync, or a coroutine asking the library) until it is truthy.

    With a ``pilot`` the app runs between polls. Returns the truthy value; fails naming
    ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            if pilot is not None:
                # One more turn so whatever the condition triggered (a redraw) has happened.
                await pilot.pause()
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        if pilot is not None:
            await pilot.pause(POLL)
        else:
            await asyncio.sleep(POLL)


@asynccontextmanager
async def live_app(readonly: bool = False) -> AsyncIterator[tuple[NaqApp, Pilot[None]]]:
    """A fresh app over the real service, run headless, once it says it is connected."""
    app = NaqApp(LiveService(Settings.from_env()), readonly=readonly)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: status(app) == "connected", "the app to connect")
        yield app, pilot
    # Textual cancels the app's workers on exit without awaiting them, so the feed closes
    # its NATS connection in the background: let it finish before the test's loop is torn
    # down (a loop closed under it leaks the socket), and check that it does finish.
    pumps = [task for task in asyncio.all_tasks() if _coro_name(task) == "NaqApp._pump"]
    if pumps:
        _, stuck = await asyncio.wait(pumps, timeout=TIMEOUT)
        assert not stuck, "the app's change feed did not close after the app exited"


def _coro_name(task: asyncio.Task[Any]) -> str:
    """The qualified name of the coroutine a task runs."""
    return str(getattr(task.get_coro(), "__qualname__", ""))


def status(app: NaqApp) -> str | None:
    """The connection status the app holds (None before the first one)."""
    return app.state.connection.status if app.state.connection else None


def indicator_text(app: NaqApp) -> str:
    """The header's connection indicator as the user reads it."""
    return str(app.query_one(HeaderBar).query_one("#connection", Label).render())


def messages(app: NaqApp) -> list[str]:
    """The notifications shown so far."""
    return [n.message for n in app._notifications]


def action_workers(app: NaqApp) -> list[Any]:
    """Workers the app started to call the service for an action (mutations run in these)."""
    return [worker for worker in app.workers if worker.group == "actions"]


async def select_row(pilot: Pilot[None], pane: str, key: str) -> None:
    """Show ``pane`` with its number key, wait until the row ``key`` is drawn, select it."""
    app = pilot.app
    assert isinstance(app, NaqApp)
    await pilot.press(str(pane_number(pane)))
    assert app.pane == pane
    table = app.tables[pane]
    await wait_until(pilot, lambda: key in table.keys, f"row {key} in the {pane} pane")
    assert table.select_key(key)
    await pilot.pause()
    assert table.selected_key == key


async def schedule_of(job_id: str) -> naq.ScheduleInfo:
    """The stored schedule, read back through the library."""
    [info] = await naq.list_scheduled_jobs(job_id=job_id)
    return info


async def failed_ids() -> set[str | None]:
    """Job ids of every dead letter in NATS."""
    return {letter.job_id for letter in await naq.list_failed_jobs()}


async def job_status(job_id: str) -> str:
    """A job's status, read back through the library."""
    return (await naq.get_job(job_id)).status


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    """Whether an awaited library read equals ``expected``."""
    return (await value) == expected


def has_status(job_id: str, expected: str) -> Callable[[], Awaitable[bool]]:
    """A check for :func:`wait_until`: the job's stored status is ``expected``."""

    async def check() -> bool:
        return await job_status(job_id) == expected

    return check


def read_only_notices(app: NaqApp) -> int:
    """How many "read-only" notifications the app has shown."""
    return sum("read-only" in message for message in messages(app))


async def refused(pilot: Pilot[None], pane: str, key: str, press: str) -> None:
    """Select ``key`` in ``pane``, press ``press``; expect a read-only notice and no dialog."""
    app = pilot.app
    assert isinstance(app, NaqApp)
    await select_row(pilot, pane, key)
    before = read_only_notices(app)
    await pilot.press(press)
    await wait_until(
        pilot,
        lambda: read_only_notices(app) == before + 1,
        f"a read-only notice for {press!r} in the {pane} pane",
    )
    assert not isinstance(app.screen, ConfirmScreen)


async def dead_letters(
    queue: Queue, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[str]:
    """Enqueue ``calls`` (functions that fail) with no retries; return their job ids once
    every one has landed in the failed stream. The caller runs a worker on ``queue``."""
    ids = [(await queue.enqueue(func, *args, max_retries=0)).job_id for func, args in calls]

    async def all_dead() -> bool:
        return set(ids) <= await failed_ids()

    await wait_until(None, all_dead, "the failing jobs in the failed stream")
    return ids


# -- schedules ---------------------------------------------------------------------------


async def test_p_pauses_and_r_resumes_a_schedule() -> None:
    schedule = await Queue("tui-sched").schedule(jobs.add, 1, 2, cron="0 3 * * *")
    key = schedule.job_id
    assert (await schedule_of(key)).status == "active"
    async with live_app() as (app, pilot):
        await select_row(pilot, "scheduled", key)
        await pilot.press("p")

        async def stored_status() -> str:
            return (await schedule_of(key)).status

        await wait_until(pilot, lambda: _is(stored_status(), "paused"), "the schedule paused")
        # The record's change comes back to the row through the feed.
        await wait_until(
            pilot,
            lambda: app.tables["scheduled"].cell_text(key, "status") == "paused",
            "the row to show paused",
        )
        await pilot.press("r")
        await wait_until(pilot, lambda: _is(stored_status(), "active"), "the schedule resumed")
    assert (await schedule_of(key)).cron == "0 3 * * *"  # pausing changed nothing else


async def test_e_reschedules_a_cron_and_refuses_a_bad_one_in_the_dialog() -> None:
    schedule = await Queue("tui-resched").schedule(jobs.add, 1, 2, cron="0 3 * * *")
    key = schedule.job_id
    before = await schedule_of(key)
    async with live_app() as (app, pilot):
        await select_row(pilot, "scheduled", key)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RescheduleScreen), "the dialog")
        dialog = app.screen
        cron = dialog.query_one("#cron", Input)
        ok = dialog.query_one("#ok", Button)
        assert cron.has_focus

        bad = "61 * * * *"
        await pilot.press(*bad)
        assert cron.value == bad
        error = str(dialog.query_one("#cron-error", Label).render())
        assert "not a valid cron expression" in error and bad in error
        assert ok.disabled
        await pilot.press("enter")  # submitting a bad cron keeps the dialog open
        assert app.screen is dialog
        assert not action_workers(app)  # nothing was sent to NATS ...
        assert await schedule_of(key) == before  # ... and nothing stored

        await pilot.press(*["backspace"] * len(bad), *"*/10 * * * *")
        assert cron.value == "*/10 * * * *"
        assert str(dialog.query_one("#cron-error", Label).render()) == ""
        assert not ok.disabled
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is not dialog, "the dialog to close")

        async def stored_cron() -> str | None:
            return (await schedule_of(key)).cron

        await wait_until(pilot, lambda: _is(stored_cron(), "*/10 * * * *"), "the new cron stored")
        after = await schedule_of(key)
        # The next run follows the new cron: a multiple of ten minutes, within the next ten.
        assert after.next_run % 600 == 0
        assert after.next_run - time.time() <= 600
        assert after.status == "active" and after.interval is None
        await wait_until(
            pilot,
            lambda: "*/10 * * * *" in app.tables["scheduled"].cell_text(key, "every"),
            "the row to show the new cron",
        )


# -- queues ----------------------------------------------------------------------------


async def test_p_pauses_a_queue_so_workers_hold_its_jobs_and_r_resumes_it() -> None:
    held_queue, probe_queue = Queue("tui-held"), Queue("tui-probe")
    held = await held_queue.enqueue(jobs.add, 2, 3)
    async with live_app() as (app, pilot):
        await select_row(pilot, "queues", "tui-held")
        await pilot.press("p")

        async def paused() -> bool:
            return (await held_queue.stats()).paused

        await wait_until(pilot, paused, "the queue paused in NATS")
        await wait_until(
            pilot,
            lambda: app.tables["queues"].cell_text("tui-held", "state") == "paused",
            "the row to show paused",
        )
        async with running_worker(["tui-held", "tui-probe"]):
            # The worker takes the other queue's job while the paused one's waits for it.
            probe = await probe_queue.enqueue(jobs.add, 1, 1)
            assert await probe.result(timeout=TIMEOUT) == 2
            stats = await held_queue.stats()
            assert (stats.paused, stats.pending, stats.running) == (True, 1, 0)
            assert await job_status(held.job_id) == JobStatus.PENDING

            await pilot.press("r")
            await wait_until(pilot, has_status(held.job_id, "completed"), "the held job")
            assert await held.result(timeout=TIMEOUT) == 5
            assert (await held_queue.stats()).paused is False
    assert any("tui-held paused" in m for m in messages(app))
    assert any("tui-held resumed" in m for m in messages(app))


async def test_l_limits_a_queue_over_all_its_workers() -> None:
    queue = Queue("tui-limits")
    await queue.enqueue(jobs.add, 1, 1)  # no worker: the queue shows with a pending job
    await queue.set_limits(rate="5/h")
    async with live_app() as (app, pilot):
        await select_row(pilot, "queues", "tui-limits")
        table = app.tables["queues"]
        # The queue's limits come to its row from the server.
        await wait_until(
            pilot, lambda: table.cell_text("tui-limits", "limits") == "5/h", "the row's limits"
        )
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LimitsScreen), "the dialog")
        dialog = app.screen
        concurrency, rate = (
            dialog.query_one("#concurrency", Input),
            dialog.query_one("#rate", Input),
        )
        assert (concurrency.value, rate.value) == ("", "5/h")
        assert concurrency.has_focus
        await pilot.press("3", "tab", *"10/s")  # the rate's text is selected: it is replaced
        assert (concurrency.value, rate.value) == ("3", "10/s")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is not dialog, "the dialog to close")

        async def stored() -> bool:
            return await queue.limits() == naq.QueueLimits(concurrency=3, rate="10/s")

        await wait_until(pilot, stored, "the limits stored on the queue")
        await wait_until(
            pilot,
            lambda: table.cell_text("tui-limits", "limits") == "≤3 at once, 10/s",
            "the row to show the new limits",
        )
    assert any("tui-limits: ≤3 at once, 10/s" in m for m in messages(app))


async def test_the_overview_opens_first_and_shows_a_queue_no_worker_takes() -> None:
    orphan = Queue("tui-orphan")
    job = await orphan.enqueue(jobs.add, 1, 2)
    try:
        async with live_app() as (app, pilot):
            assert app.pane == "overview"
            overview = app.query_one(Overview)

            def flagged() -> bool:
                drawn = overview.query_one("#ov-attention", Static).content
                lines = drawn.renderables if isinstance(drawn, Group) else [drawn]
                return any("queue tui-orphan: 1 waiting, no worker" in t.plain for t in lines)

            await wait_until(pilot, flagged, "the Overview to flag the queue without a worker")
            row = app.state.rows["queues"]["tui-orphan"]
            assert (row.pending, row.latency >= 0.0) == (1, True)
            # The job detail reads the attempts (none yet: the job waits).
            detail = await app.service.job_detail(job.job_id)
            assert (detail.status, detail.attempts) == ("pending", ())
    finally:
        await orphan.purge()


# -- dead letters ------------------------------------------------------------------------


async def test_R_requeues_a_dead_letter_and_it_completes(tmp_path: Path) -> None:
    queue = Queue("tui-failed")
    async with running_worker("tui-failed"):
        # Fails on its first run only: once requeued, the same worker completes it.
        [job_id] = await dead_letters(queue, [(jobs.flaky, (str(tmp_path / "count"), 1))])
        assert await job_status(job_id) == JobStatus.FAILED
        async with live_app() as (app, pilot):
            await select_row(pilot, "failed", job_id)
            await pilot.press("R")
            await wait_until(pilot, has_status(job_id, "completed"), "the rerun")
            assert await naq.fetch_job_result(job_id) == 2  # the second call's count
            assert job_id not in await failed_ids()
            await wait_until(
                pilot, lambda: job_id not in app.tables["failed"].keys, "the row to go"
            )
            assert any("requeued 1 job(s)" in m for m in messages(app))


async def test_d_deletes_a_dead_letter_and_marked_ones_are_requeued_together(
    tmp_path: Path,
) -> None:
    queue = Queue("tui-bulk")
    counters = [tmp_path / f"count{i}" for i in range(3)]
    async with running_worker("tui-bulk"):
        gone, first, second = await dead_letters(
            queue, [(jobs.flaky, (str(counter), 1)) for counter in counters]
        )
        async with live_app() as (app, pilot):
            await select_row(pilot, "failed", gone)
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm")
            assert gone in str(app.screen.query_one("#question", Label).render())
            await pilot.press("y")

            async def deleted() -> bool:
                return gone not in await failed_ids()

            await wait_until(pilot, deleted, "the dead letter deleted")
            assert {first, second} <= await failed_ids()  # only the selected one went

            for key in (first, second):
                await select_row(pilot, "failed", key)
                await pilot.press("space")
            assert app.state.marked == {first, second}
            await pilot.press("R")
            for key in (first, second):
                await wait_until(pilot, has_status(key, "completed"), f"{key} rerun")
            assert not {gone, first, second} & await failed_ids()
            await wait_until(pilot, lambda: not app.tables["failed"].keys, "an empty Failed pane")
            assert app.state.marked == set()
    # Deleted, not requeued: the deleted job ran once (and failed); the others twice.
    assert [c.read_text() for c in counters] == ["1", "2", "2"]
    assert await job_status(gone) == JobStatus.FAILED


# -- jobs ------------------------------------------------------------------------------


async def test_c_cancels_a_pending_job_and_it_never_runs(tmp_path: Path) -> None:
    queue, log = Queue("tui-cancel"), tmp_path / "runs.log"
    doomed = await queue.enqueue(jobs.record_run, str(log), "doomed")
    async with live_app() as (app, pilot):
        await select_row(pilot, "jobs", doomed.job_id)
        assert app.tables["jobs"].cell_text(doomed.job_id, "status") == "pending"
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm")
        await pilot.press("y")
        await wait_until(pilot, has_status(doomed.job_id, "cancelled"), "cancelled")
        await wait_until(
            pilot,
            lambda: app.tables["jobs"].cell_text(doomed.job_id, "status") == "cancelled",
            "the row to show cancelled",
        )
    # A worker now meets the cancelled job's message first, and a later job after it.
    after = await queue.enqueue(jobs.record_run, str(log), "after")
    async with running_worker("tui-cancel"):
        assert await after.result(timeout=TIMEOUT) == "after"

        async def drained() -> bool:
            stats = await queue.stats()
            return stats.pending == 0 and stats.running == 0

        await wait_until(None, drained, "the cancelled job's message taken off the queue")
    info = await naq.get_job(doomed.job_id)
    assert (info.status, info.started_at) == (JobStatus.CANCELLED, None)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["after"]


# -- read-only -------------------------------------------------------------------------


async def test_readonly_refuses_pause_purge_requeue_and_delete() -> None:
    queue, idle = Queue("tui-ro"), Queue("tui-ro-idle")
    async with running_worker("tui-ro"):
        [dead] = await dead_letters(queue, [(jobs.fail, ("no",))])
    waiting = await idle.enqueue(jobs.add, 1, 1)  # no worker: it stays pending
    async with live_app(readonly=True) as (app, pilot):
        assert app.query_one(HeaderBar).query_one("#readonly", Label)
        await refused(pilot, "queues", "tui-ro-idle", "p")  # pause
        await refused(pilot, "queues", "tui-ro-idle", "d")  # purge
        await refused(pilot, "failed", dead, "R")  # requeue
        await refused(pilot, "failed", dead, "d")  # delete
        assert not action_workers(app)  # no action ever reached the service
    stats = await idle.stats()
    assert (stats.paused, stats.pending) == (False, 1)
    assert await job_status(waiting.job_id) == JobStatus.PENDING
    assert dead in await failed_ids()
    assert await job_status(dead) == JobStatus.FAILED


# -- reconnect -------------------------------------------------------------------------


async def test_the_app_reconnects_by_itself_after_a_server_restart(
    fresh_server: EmbeddedServer,
) -> None:
    queue = Queue("tui-restart")
    before = await queue.enqueue(jobs.add, 1, 1)
    async with live_app() as (app, pilot):
        await select_row(pilot, "jobs", before.job_id)
        assert "● connected" in indicator_text(app)
        # Close the test's own connection: what is enqueued after the restart goes through a
        # new one, so only the app's feed has to find its way back by itself.
        await naq.disconnect()

        fresh_server.stop()  # a graceful stop; the store stays (the fixture gave a data dir)
        await wait_until(
            pilot,
            lambda: status(app) in ("reconnecting", "disconnected"),
            "the app to see the server go",
        )
        assert app.is_running
        assert any(word in indicator_text(app) for word in ("reconnecting", "disconnected"))
        assert before.job_id in app.tables["jobs"].keys  # what it showed stays on screen

        fresh_server.start()  # same port and store
        await wait_until(pilot, lambda: status(app) == "connected", "the app to reconnect")
        assert "● connected" in indicator_text(app)
        after = await queue.enqueue(jobs.add, 2, 2)
        # No key pressed since the restart: the feed brings the new job to the shown pane.
        await wait_until(
            pilot,
            lambda: after.job_id in app.tables["jobs"].keys,
            "a job enqueued after the restart in the Jobs pane",
        )
        assert app.pane == "jobs"
        assert app.tables["jobs"].cell_text(after.job_id, "status") == "pending"
        assert app.is_running
