"""The app driven by keys over the FakeService (Pilot, headless)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from textual.events import Key
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label

from naq.errors import ConfigurationError
from naq.limits import QueueLimits
from naq_tui import state as state_module
from naq_tui.app import NaqApp
from naq_tui.fake import NOW, FakeService, fake_id
from naq_tui.screens.confirm import ConfirmScreen
from naq_tui.screens.help import HelpScreen
from naq_tui.screens.job_detail import JobDetailScreen
from naq_tui.screens.limits import LimitsScreen, read_concurrency, read_rate
from naq_tui.screens.reschedule import RescheduleScreen
from naq_tui.service import Connection, JobRow, Sampling, Upsert
from naq_tui.shots import settle
from naq_tui.state import TABLES, pane_number
from naq_tui.widgets.filter_input import FilterInput
from naq_tui.widgets.header import HeaderBar
from naq_tui.widgets.overview import Overview
from naq_tui.widgets.pane_tabs import PaneTabs

SIZE = (120, 36)


@asynccontextmanager
async def running(
    readonly: bool = False,
    size: tuple[int, int] = SIZE,
    pane: str | None = "queues",
    **fake_options: Any,
) -> AsyncIterator[tuple[NaqApp, Pilot[None], FakeService]]:
    """The app over a fresh fake, loaded, showing ``pane`` (None: the pane it opens on)."""
    fake = FakeService(**fake_options)
    app = NaqApp(fake, readonly=readonly)
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        if pane is not None:
            await pilot.press(str(pane_number(pane)))
        yield app, pilot, fake


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5) -> None:
    """Let the app run until ``condition()`` holds (changes arrive through a worker)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)
    await pilot.pause()


def cell(app: NaqApp, pane: str, key: str, column: str) -> str:
    return app.tables[pane].cell_text(key, column)


def messages(app: NaqApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_number_keys_switch_panes() -> None:
    async with running(pane=None) as (app, pilot, _):
        assert app.pane == "overview"
        for key, pane in zip(
            "2345610",
            ("workers", "scheduled", "jobs", "failed", "metrics", "queues", "overview"),
            strict=True,
        ):
            await pilot.press(key)
            assert app.pane == pane
            if pane in TABLES:
                assert app.focused is app.tables[pane]


async def test_every_row_is_drawn_and_tabs_count_them() -> None:
    async with running() as (app, pilot, fake):
        assert app.tables["queues"].row_count == 3
        assert app.tables["jobs"].row_count == 0  # hidden panes are drawn when shown
        await pilot.press("4")
        assert app.tables["jobs"].row_count == len(fake.jobs) == 25
        await pilot.press("5")
        assert app.tables["failed"].row_count == 4
        tab = app.query_one(PaneTabs).label("jobs")
        assert tab.plain == "4 Jobs 25"


async def test_p_pauses_a_schedule_and_the_row_shows_it() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("3")
        key = fake_id("s-cleanup")
        assert app.tables["scheduled"].select_key(key)
        assert cell(app, "scheduled", key, "status") == "active"
        await pilot.press("p")
        await wait_until(pilot, lambda: cell(app, "scheduled", key, "status") == "paused")
        assert ("pause_schedule", key) in fake.calls
        await pilot.press("r")
        await wait_until(pilot, lambda: cell(app, "scheduled", key, "status") == "active")
        assert ("resume_schedule", key) in fake.calls


async def test_p_pauses_a_queue() -> None:
    async with running() as (app, pilot, fake):
        assert app.tables["queues"].select_key("emails")
        await pilot.press("p")
        await wait_until(pilot, lambda: cell(app, "queues", "emails", "state") == "paused")
        assert fake.calls == [("pause_queue", "emails")]
        assert any("emails paused" in m for m in messages(app))


async def test_reschedule_refuses_a_bad_cron_and_accepts_a_good_one() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("3")
        key = fake_id("s-report")
        app.tables["scheduled"].select_key(key)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RescheduleScreen))
        dialog = app.screen
        ok = dialog.query_one("#ok", Button)
        error = dialog.query_one("#cron-error", Label)
        assert ok.disabled  # nothing asked yet

        dialog.query_one("#cron", Input).value = "61 * * * *"
        await pilot.pause()
        assert ok.disabled
        assert "not a valid cron expression" in str(error.render())

        await pilot.click("#ok")  # disabled: nothing happens
        assert isinstance(app.screen, RescheduleScreen)
        assert not [c for c in fake.calls if c[0] == "reschedule"]

        dialog.query_one("#cron", Input).value = "*/10 * * * *"
        await pilot.pause()
        assert not ok.disabled
        assert str(error.render()) == ""
        await pilot.click("#ok")
        await wait_until(pilot, lambda: any(c[0] == "reschedule" for c in fake.calls))
        assert ("reschedule", key, "*/10 * * * *", None, None) in fake.calls
        assert not isinstance(app.screen, RescheduleScreen)
        await wait_until(
            pilot, lambda: cell(app, "scheduled", key, "every").startswith("cron */10 * * * *")
        )


async def test_reschedule_validates_interval_and_next_run_as_you_type() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("3")
        key = fake_id("s-cleanup")
        app.tables["scheduled"].select_key(key)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, RescheduleScreen))
        dialog = app.screen
        ok = dialog.query_one("#ok", Button)
        interval = dialog.query_one("#interval", Input)
        interval.focus()
        await pilot.press("-", "5")
        assert interval.value == "-5"
        assert ok.disabled
        assert "positive" in str(dialog.query_one("#interval-error", Label).render())
        interval.value = "90"
        next_run = dialog.query_one("#next_run", Input)
        next_run.value = "tomorrow"
        await pilot.pause()
        assert ok.disabled
        assert "not an ISO time" in str(dialog.query_one("#next_run-error", Label).render())
        next_run.value = "2027-01-15T09:30:00Z"
        await pilot.pause()
        assert not ok.disabled
        await pilot.press("enter")  # submitting an input submits the dialog
        await wait_until(pilot, lambda: any(c[0] == "reschedule" for c in fake.calls))
        assert ("reschedule", key, None, 90.0, 1_800_005_400.0) in fake.calls


async def test_reschedule_escape_changes_nothing() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("3", "e")
        await wait_until(pilot, lambda: isinstance(app.screen, RescheduleScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RescheduleScreen)
        assert fake.calls == []


async def open_limits(app: NaqApp, pilot: Pilot[None], queue: str) -> LimitsScreen:
    """Select ``queue`` in the Queues pane and press ``l``: its limits dialog."""
    assert app.tables["queues"].select_key(queue)
    await pilot.press("l")
    await wait_until(pilot, lambda: isinstance(app.screen, LimitsScreen))
    assert isinstance(app.screen, LimitsScreen)
    return app.screen


def error_of(dialog: LimitsScreen, field: str) -> str:
    return str(dialog.query_one(f"#{field}-error", Label).render())


async def test_l_refuses_a_bad_rate_as_you_type_and_saves_a_good_one() -> None:
    async with running() as (app, pilot, fake):
        assert cell(app, "queues", "emails", "limits") == "≤5 at once, 20/s"
        dialog = await open_limits(app, pilot, "emails")
        assert "Limits of queue emails" in str(dialog.query_one(".dialog-title", Label).render())
        concurrency = dialog.query_one("#concurrency", Input)
        rate = dialog.query_one("#rate", Input)
        save = dialog.query_one("#save", Button)
        # Prefilled with the queue's limits, which are valid as they are.
        assert (concurrency.value, rate.value) == ("5", "20/s")
        assert not save.disabled and concurrency.has_focus

        await pilot.press("tab")  # the rate, its text selected: typing replaces it
        assert rate.has_focus
        await pilot.press(*"20/x")
        assert rate.value == "20/x"
        assert "rate='20/x' must look like '20/s'" in error_of(dialog, "rate")
        assert rate.has_class("-invalid") and save.disabled
        await pilot.press("enter")  # refused: the dialog stays, nothing is asked
        await pilot.click("#save")
        await pilot.pause()
        assert app.screen is dialog
        assert fake.calls == []

        await pilot.press(*["backspace"] * 4, *"100/m")
        assert rate.value == "100/m"
        assert error_of(dialog, "rate") == "" and not save.disabled
        concurrency.value = "0"
        await pilot.pause()
        assert "concurrency=0 must be a whole number >= 1" in error_of(dialog, "concurrency")
        assert save.disabled
        concurrency.value = "3"
        await pilot.pause()
        assert error_of(dialog, "concurrency") == "" and not save.disabled
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: cell(app, "queues", "emails", "limits") == "≤3 at once, 100/m"
        )
        assert fake.calls == [("set_limits", "emails", 3, "100/m")]
        assert app.screen is not dialog
        assert "queue emails: ≤3 at once, 100/m" in messages(app)


async def test_l_with_empty_fields_removes_the_limits() -> None:
    async with running() as (app, pilot, fake):
        dialog = await open_limits(app, pilot, "reports")
        assert dialog.query_one("#concurrency", Input).value == "1"
        assert dialog.query_one("#rate", Input).value == ""
        dialog.query_one("#concurrency", Input).value = " "
        await pilot.pause()
        await pilot.click("#save")
        await wait_until(pilot, lambda: cell(app, "queues", "reports", "limits") == "")
        assert fake.calls == [("set_limits", "reports", None, None)]
        assert fake.queues["reports"].limits == QueueLimits()
        assert "queue reports: no limits" in messages(app)


async def test_escape_on_the_limits_dialog_changes_nothing() -> None:
    async with running() as (app, pilot, fake):
        dialog = await open_limits(app, pilot, "default")
        dialog.query_one("#concurrency", Input).value = "4"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not dialog
        assert fake.calls == []
        assert cell(app, "queues", "default", "limits") == ""


@pytest.mark.parametrize(
    ("text", "value"), [("", None), ("  ", None), (" 7 ", 7)], ids=["empty", "blank", "seven"]
)
def test_read_concurrency_takes_a_whole_number_or_nothing(text: str, value: int | None) -> None:
    assert read_concurrency(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "many"])
def test_read_concurrency_refuses_anything_else_naming_it(text: str) -> None:
    with pytest.raises(ConfigurationError, match=f"concurrency=.?{text}"):
        read_concurrency(text)


def test_read_rate_writes_the_rate_as_the_library_keeps_it() -> None:
    assert read_rate("") is None
    assert read_rate(" 20 / sec ") == "20/s"
    with pytest.raises(ConfigurationError, match="rate='20/x'"):
        read_rate("20/x")


async def test_queues_show_their_limits_and_workers_the_order_they_take_queues() -> None:
    async with running() as (app, pilot, _):
        assert app.tables["queues"].header_label("limits") == "Limits"
        assert cell(app, "queues", "emails", "limits") == "≤5 at once, 20/s"
        assert cell(app, "queues", "reports", "limits") == "≤1 at once"
        assert cell(app, "queues", "default", "limits") == ""
        await pilot.press("2")
        assert cell(app, "workers", "worker-bravo", "queues") == "default › emails › reports"
        assert cell(app, "workers", "worker-alpha", "queues") == "default, emails (fair)"
        assert cell(app, "workers", "worker-charlie", "queues") == "reports"


async def test_c_and_yes_cancels_a_job() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        key = fake_id("p1")
        app.tables["jobs"].select_key(key)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: cell(app, "jobs", key, "status") == "cancelled")
        assert fake.calls == [("cancel_job", key)]


async def test_c_and_no_keeps_the_job() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        app.tables["jobs"].select_key(fake_id("p1"))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert fake.calls == []


async def test_c_on_a_schedule_deletes_it_after_asking() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("3")
        key = fake_id("s-digest")
        app.tables["scheduled"].select_key(key)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: app.tables["scheduled"].row_count == 4)
        assert fake.calls == [("cancel_schedule", key)]


async def test_space_marks_and_R_requeues_the_marked_dead_letters() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("5")
        table = app.tables["failed"]
        first, second = fake_id("f1"), fake_id("f2")
        table.select_key(first)
        await pilot.press("space", "space")  # marks f1, moves down, marks f2
        assert app.state.marked == {first, second}
        assert cell(app, "failed", first, "mark") == "✓"
        assert cell(app, "failed", fake_id("f4"), "mark") == " "
        await pilot.press("R")
        await wait_until(pilot, lambda: table.row_count == 2)
        assert fake.calls == [("requeue_failed", sorted([first, second]))]
        assert app.state.marked == set()
        assert app.state.rows["jobs"][first].status == "pending"
        assert any("requeued 2" in m for m in messages(app))


async def test_R_on_garbage_says_it_cannot_be_requeued() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("5")
        app.tables["failed"].select_key("#7")
        await pilot.press("R")
        await pilot.pause()
        assert fake.calls == []
        assert any("no job id" in m for m in messages(app))


async def test_d_deletes_marked_dead_letters_after_asking() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("5")
        app.tables["failed"].select_key("#7")
        await pilot.press("space", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.tables["failed"].row_count == 3)
        assert fake.calls == [("delete_failed", ["#7"])]


async def test_d_and_yes_purges_a_queue() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("1")
        app.tables["queues"].select_key("default")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Purge queue default" in str(app.screen.query_one("#question", Label).render())
        await pilot.press("y")
        await wait_until(pilot, lambda: cell(app, "queues", "default", "pending") == "0")
        assert fake.calls == [("purge_queue", "default")]
        assert any("purged 4 job(s) from default" in m for m in messages(app))
        pending = [j for j in app.state.rows["jobs"].values() if j.status == "pending"]
        assert all(j.queue != "default" for j in pending)


async def test_escape_on_the_confirm_dialog_purges_nothing() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert fake.calls == []


async def test_readonly_refuses_and_hides_mutations() -> None:
    async with running(readonly=True) as (app, pilot, fake):
        await pilot.press("3")
        app.tables["scheduled"].select_key(fake_id("s-cleanup"))
        for key in ("p", "r", "e", "c"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, (ConfirmScreen, RescheduleScreen))
        await pilot.press("1", "d", "l")
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmScreen, LimitsScreen))
        await pilot.press("5", "R", "space")
        await pilot.pause()
        assert fake.calls == []
        assert any("read-only" in m for m in messages(app))
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not shown & {"pause", "resume", "retry", "delete_failed", "mark", "limits"}
        assert app.query_one("#readonly", Label)


async def test_footer_shows_only_the_actions_of_the_pane() -> None:
    async with running() as (app, pilot, _):

        def shown() -> set[str]:
            return {
                b.binding.action
                for b in app.screen.active_bindings.values()
                if b.binding.show and b.enabled
            }

        assert {"pause", "resume", "purge_queue"} <= shown()
        assert "retry" not in shown()
        await pilot.press("5")
        assert {"retry", "delete_failed", "mark", "app.open_detail"} <= shown()
        assert "pause" not in shown()


async def test_slash_filters_the_jobs_live_and_escape_clears() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4", "slash")
        filter_input = app.query_one(FilterInput)
        assert filter_input.display and filter_input.has_focus
        await pilot.press(*"email")
        emails = sum(1 for j in fake.jobs.values() if "email" in j.function)
        assert 0 < emails < 25
        await wait_until(pilot, lambda: app.tables["jobs"].row_count == emails)
        tab = app.query_one(PaneTabs).label("jobs")
        assert tab.plain == f"4 Jobs {emails}/25"
        await pilot.press("escape")
        await pilot.pause()
        assert not filter_input.display
        assert app.tables["jobs"].row_count == 25
        assert app.focused is app.tables["jobs"]


async def test_text_typed_right_after_slash_goes_to_the_filter() -> None:
    # A fast typist (or a paste over SSH): every key arrives before focus has moved.
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        for key, character in [("slash", "/"), *((c, c) for c in "cancel")]:
            app.post_message(Key(key, character))
        await wait_until(pilot, lambda: app.state.views["jobs"].filter == "cancel")
        assert app.query_one(FilterInput).value == "cancel"
        # "c" was text, not the cancel action: no confirm dialog, no job touched; the
        # service was told the filter (it sends every job change matching it).
        assert not isinstance(app.screen, ConfirmScreen)
        assert [call for call in fake.calls if call[0] != "set_job_filter"] == []
        assert fake.calls[-1] == ("set_job_filter", "cancel")


async def test_enter_keeps_the_filter() -> None:
    async with running() as (app, pilot, _):
        await pilot.press("4", "slash", *"retry", "enter")
        await pilot.pause()
        assert not app.query_one(FilterInput).display
        assert app.tables["jobs"].row_count == 2
        await pilot.press("2")  # other panes keep their own filter
        assert app.tables["workers"].row_count == 3


async def test_filtered_out_rows_stay_out_when_they_change() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4", "slash", *"pending", "enter")
        await pilot.pause()
        assert app.tables["jobs"].row_count == 4
        job = fake.jobs[fake_id("c1")]
        fake.emit(Upsert(replace(job, updated_at=NOW)))
        fake.emit(Upsert(replace(fake.jobs[fake_id("p1")], status="running")))
        await wait_until(pilot, lambda: app.tables["jobs"].row_count == 3)


async def test_enter_opens_the_job_detail_and_escape_closes_it() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        key = fake_id("f1")
        app.tables["jobs"].select_key(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        assert ("job_detail", key) in fake.calls
        screen = app.screen
        assert isinstance(screen, JobDetailScreen)
        assert screen.detail.traceback and "ConnectionError" in screen.detail.traceback
        assert screen.query_one("#traceback")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, JobDetailScreen)


async def test_detail_of_a_completed_job_shows_its_result() -> None:
    async with running() as (app, pilot, _):
        await pilot.press("4")
        app.tables["jobs"].select_key(fake_id("c0"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        assert app.screen.query_one("#result")
        await pilot.press("q")  # q closes the detail, not the app
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, JobDetailScreen)


async def test_detail_from_failed_and_scheduled_panes() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("5")
        app.tables["failed"].select_key(fake_id("f2"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await pilot.press("escape", "3")
        app.tables["scheduled"].select_key(fake_id("s-report"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: ("job_detail", fake_id("s-report")) in fake.calls)
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))


async def test_detail_of_a_garbage_dead_letter_explains_instead() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("5")
        app.tables["failed"].select_key("#7")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, JobDetailScreen)
        assert fake.calls == []
        assert any("no job id" in m for m in messages(app))


async def test_errors_are_one_line_notifications() -> None:
    async with running() as (app, pilot, fake):

        async def boom(queue: str) -> None:
            raise RuntimeError(f"queue {queue!r} is on fire\nTraceback (most recent call last):")

        fake.pause_queue = boom  # type: ignore[method-assign]
        await pilot.press("p")
        await wait_until(pilot, lambda: any("on fire" in m for m in messages(app)))
        assert "queue 'default' is on fire" in messages(app)
        assert app.is_running

        app._show_detail("no-such-job")
        await wait_until(pilot, lambda: any("no job with id" in m for m in messages(app)))
        assert not isinstance(app.screen, JobDetailScreen)


async def test_s_cycles_the_sort_and_S_reverses() -> None:
    async with running() as (app, pilot, _):
        table = app.tables["queues"]
        assert table.keys == ["default", "emails", "reports"]
        await pilot.press("s")  # name -> pending
        assert app.state.views["queues"].sort_column == "pending"
        assert table.keys == ["emails", "reports", "default"]
        assert "▲" in table.header_label("pending")
        drawn = dict(table._cells)
        await pilot.press("S")
        assert table.keys == ["default", "reports", "emails"]
        assert "▼" in table.header_label("pending")
        # A new order moves the rows and the arrow; it doesn't re-make the rows' cells.
        assert all(table._cells[key] is cells for key, cells in drawn.items())


async def test_clicking_a_header_sorts_by_it() -> None:
    async with running() as (app, pilot, _):
        table = app.tables["queues"]
        x = table.column_offset("failed") + 1
        await pilot.click(table, offset=(x, 0))  # the "Failed" header
        assert app.state.views["queues"].sort_column == "failed"
        assert table.keys == ["emails", "reports", "default"]


async def test_rows_are_updated_by_key_not_rebuilt() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        table = app.tables["jobs"]
        before = dict(table._cells)
        assert len(before) == 25  # every row on screen was drawn
        running_job = fake.jobs[fake_id("r1")]
        fake.emit(Upsert(replace(running_job, progress=0.9, progress_message="1024px")))
        await wait_until(pilot, lambda: "90%" in cell(app, "jobs", running_job.job_id, "outcome"))
        assert table._cells[running_job.job_id] is not before[running_job.job_id]
        # The other rows keep the cells they were drawn with: only the changed row was re-made.
        others = [key for key in before if key != running_job.job_id]
        assert all(table._cells[key] is before[key] for key in others)
        new = JobRow(
            job_id="new-job", queue="default", function="m:f", status="pending", updated_at=NOW + 1
        )
        fake.emit(Upsert(new))
        await wait_until(pilot, lambda: table.row_count == 26)
        assert table.keys[0] == "new-job"  # newest first: sorted into place
        assert all(table._cells[key] is before[key] for key in others)


async def test_hidden_panes_catch_up_when_shown() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4", "1")
        table = app.tables["jobs"]
        drawn = dict(table._cells)
        job = fake.jobs[fake_id("p2")]
        fake.emit(Upsert(replace(job, status="running", updated_at=NOW)))
        await wait_until(pilot, lambda: app.state.rows["jobs"][job.job_id].status == "running")
        assert cell(app, "jobs", job.job_id, "status") == "pending"  # not drawn while hidden
        await pilot.press("4")
        assert cell(app, "jobs", job.job_id, "status") == "running"
        assert table.keys[0] == job.job_id
        unchanged = [key for key in drawn if key != job.job_id]
        assert all(table._cells[key] is drawn[key] for key in unchanged)


async def test_a_pane_that_missed_much_is_redrawn_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NaqApp, "STALE_MAX", 10)
    async with running() as (app, pilot, fake):
        fake.emit(
            *(
                Upsert(JobRow(f"n{i:02d}", "default", "m:f", "pending", updated_at=NOW + i))
                for i in range(40)
            )
        )
        await wait_until(pilot, lambda: len(app.state.rows["jobs"]) == 65)
        assert "jobs" in app._redraw_all and "jobs" not in app._stale
        await pilot.press("4")
        assert app.tables["jobs"].row_count == 65
        assert app.tables["jobs"].keys[0] == "n39"


async def test_cursor_stays_on_its_row_when_rows_arrive_above() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        table = app.tables["jobs"]
        key = fake_id("c3")
        table.select_key(key)
        fake.emit(
            *(
                Upsert(JobRow(f"n{i}", "default", "m:f", "pending", updated_at=NOW + i))
                for i in range(5)
            )
        )
        await wait_until(pilot, lambda: table.row_count == 30)
        assert table.selected_key == key


async def test_a_burst_of_changes_is_coalesced() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        before = app.batches
        fake.emit(
            *(
                Upsert(JobRow(f"burst-{i:04d}", "default", "m:f", "completed", updated_at=NOW))
                for i in range(1200)
            )
        )
        await wait_until(pilot, lambda: len(app.state.rows["jobs"]) == 1225)
        # 1200 changes at most 500 at a time: a handful of batches, not 1200 repaints.
        assert 3 <= app.batches - before <= 6
        # Drawn at most DRAW_MIN after the last drawing.
        await wait_until(pilot, lambda: app.tables["jobs"].row_count == 1225)


async def test_evicted_jobs_leave_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "MAX_JOBS", 100)
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        fake.emit(
            *(
                Upsert(JobRow(f"old-{i:04d}", "default", "m:f", "completed", updated_at=NOW - i))
                for i in range(300)
            )
        )
        await wait_until(pilot, lambda: not fake._queue().qsize() and app.batches >= 2)
        await wait_until(pilot, lambda: app.tables["jobs"].row_count == 100)
        table = app.tables["jobs"]
        assert set(table.keys) == set(app.state.rows["jobs"])
        running_ids = {j.job_id for j in fake.jobs.values() if j.status == "running"}
        assert running_ids <= set(table.keys)


async def test_cells_are_text_not_markup() -> None:
    async with running() as (app, pilot, fake):
        await pilot.press("4")
        job = fake.jobs[fake_id("f2")]
        fake.emit(Upsert(replace(job, error="ValueError: [bold]tiff[/bold] in ['a']")))
        await wait_until(
            pilot,
            lambda: (
                cell(app, "jobs", job.job_id, "outcome") == "ValueError: [bold]tiff[/bold] in ['a']"
            ),
        )


async def test_connection_indicator_follows_the_service() -> None:
    async with running(connection_status="disconnected") as (app, pilot, fake):
        label = app.query_one(HeaderBar).query_one("#connection", Label)
        assert "✕ disconnected" in str(label.render())
        fake.emit(Connection("reconnecting", fake.url, "retrying"))
        await wait_until(pilot, lambda: "◌ reconnecting: retrying" in str(label.render()))
        fake.emit(Connection("connected", fake.url))
        await wait_until(pilot, lambda: "● connected" in str(label.render()))


async def test_a_failing_change_stream_shows_disconnected() -> None:
    class Broken(FakeService):
        async def changes(self):  # type: ignore[override]
            yield Connection("connected", self.url)
            raise ConnectionError("nats: connection closed")

    app = NaqApp(Broken())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot,
            lambda: (
                app.state.connection is not None and app.state.connection.status == "disconnected"
            ),
        )
        assert app.state.connection.detail == "nats: connection closed"


async def test_help_and_palette() -> None:
    async with running() as (app, pilot, _):
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"failed")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.pane == "failed")


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_q_and_ctrl_c_quit(key: str) -> None:
    async with running() as (app, pilot, _):
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running


async def test_fits_80x24() -> None:
    async with running(size=(80, 24)) as (app, pilot, _):
        for key in "123456":
            await pilot.press(key)
            table = app.tables[app.pane]
            assert table.region.height >= 15
            assert table.region.right <= 80
            if app.pane in ("queues", "workers"):
                # Every column on show, the limits and the queue order included.
                assert table.virtual_size.width <= 80, app.pane


async def test_the_header_says_while_the_job_changes_are_sampled() -> None:
    async with running(size=(80, 24)) as (app, pilot, fake):
        label = app.query_one("#sampling", Label)
        assert not label.display
        fake.emit(Sampling(every=40, rate=13_000))
        await wait_until(pilot, lambda: label.display)
        assert "showing 1 in 40 completed (13,000 changes/s)" in str(label.render())
        assert label.region.width > 0 and label.region.right <= 80  # it fits at 80 columns
        fake.emit(Sampling())
        await wait_until(pilot, lambda: not label.display)


async def test_a_click_on_a_tab_shows_its_pane_up_to_date() -> None:
    async with running(pane=None) as (app, pilot, fake):
        tabs = app.query_one(PaneTabs)
        text = tabs.render().plain.splitlines()[0]
        assert await pilot.click(PaneTabs, offset=(text.index("4 Jobs") + 2, 0))
        await pilot.pause()
        assert app.pane == "jobs"
        assert app.focused is app.tables["jobs"]
        assert app.tables["jobs"].row_count == len(fake.jobs)
        assert app.tables["jobs"].region.area > 0 and not app.query_one(Overview).display


async def test_the_underline_is_under_the_shown_tab_only() -> None:
    async with running(pane="failed") as (app, pilot, _):
        tabs = app.query_one(PaneTabs)
        labels, bar = tabs.render().plain.splitlines()
        strip = tabs.render_line(1)
        colors = [
            segment.style.color if segment.style else None
            for segment in strip
            for _ in range(segment.cell_length)
        ]
        start = labels.index("5 Failed")
        end = start + len(tabs.label("failed").plain)
        highlighted = [x for x, color in enumerate(colors) if color != colors[0]]
        assert highlighted == list(range(start, end)), bar


async def test_no_hidden_table_takes_the_keyboard_on_the_overview() -> None:
    async with running(pane=None) as (app, pilot, _):
        assert app.focused is None
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        assert app.focused is None
        await pilot.press("down", "end")
        assert all(table.cursor_row == 0 for table in app.tables.values())


async def test_while_sampled_the_changes_are_drawn_at_most_once_a_second() -> None:
    async with running(pane="jobs") as (app, pilot, fake):
        table = app.tables["jobs"]
        fake.emit(Sampling(every=40, rate=13_000))
        await wait_until(pilot, lambda: app.state.sampling.every == 40)
        drawn = []
        for name in ("first", "second", "third"):
            fake.emit(Upsert(JobRow(name, "default", "m:f", "completed", updated_at=NOW + 1)))
            await wait_until(pilot, lambda n=name: n in table.keys)
            drawn.append(app._drawn_at)
        gaps = [later - earlier for earlier, later in zip(drawn, drawn[1:], strict=False)]
        assert min(gaps) >= app.DRAW_MIN_SAMPLED - 0.01, gaps
        # Once the changes are all read again, they are drawn sooner.
        fake.emit(Sampling())
        for name in ("fourth", "fifth"):
            fake.emit(Upsert(JobRow(name, "default", "m:f", "completed", updated_at=NOW + 1)))
            await wait_until(pilot, lambda n=name: n in table.keys)
            drawn.append(app._drawn_at)
        assert drawn[-1] - drawn[-2] < app.DRAW_MIN_SAMPLED - 0.2


async def test_every_tick_repaints_the_ages_of_an_idle_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [NOW]
    monkeypatch.setattr(FakeService, "now", lambda self: clock[0])
    async with running(pane="jobs") as (app, pilot, _):
        table = app.tables["jobs"]
        repainted: list[float] = []
        repaint = table.refresh

        def counted(*args: Any, **kwargs: Any) -> Any:
            repainted.append(clock[0])
            return repaint(*args, **kwargs)

        monkeypatch.setattr(table, "refresh", counted)
        first = table.keys[0]
        ages = [table.cell_text(first, "updated")]
        for _ in range(3):
            clock[0] += 0.999  # a timer's tick comes a little early as often as late
            app._tick()
            assert repainted and repainted[-1] == clock[0]  # this tick repainted it
            ages.append(table.cell_text(first, "updated"))
        assert ages[0] != ages[-1], ages
        # Just after a drawing (a busy table is drawn once a second), a tick paints nothing.
        count = len(repainted)
        clock[0] += 0.3
        app._tick()
        assert len(repainted) == count


async def test_on_a_narrow_terminal_the_shown_tab_stays_in_sight() -> None:
    async with running(size=(50, 24), pane="metrics") as (app, pilot, _):
        tabs = app.query_one(PaneTabs)
        labels, _bar = tabs.render().plain.splitlines()
        assert len(labels) == 50
        assert labels.rstrip().endswith(tabs.label("metrics").plain), labels
        # A click on it (where it is drawn now) still finds it; back to the first pane,
        # the line starts at the first tab again.
        column = labels.index(tabs.label("failed").plain)
        assert await pilot.click(PaneTabs, offset=(column, 0))
        await pilot.pause()
        assert app.pane == "failed"
        await pilot.press("0")
        await pilot.pause()
        assert tabs.render().plain.startswith(" " + tabs.label("overview").plain)
