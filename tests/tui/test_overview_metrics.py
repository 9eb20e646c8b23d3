"""The Overview, the Metrics pane, the new columns and the attempts timeline, over the
FakeService (Pilot, headless)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from naq_tui.app import NaqApp
from naq_tui.fake import NOW, fake_id
from naq_tui.health import LATENCY_STUCK
from naq_tui.screens.job_detail import JobDetailScreen
from naq_tui.service import FunctionRow, QueueRow, QueueTrend, Remove, Series, Upsert
from naq_tui.widgets.filter_input import FilterInput
from naq_tui.widgets.overview import Overview
from naq_tui.widgets.pane_tabs import PaneTabs
from tests.tui.test_app_fake import cell, running, wait_until


def content(app: NaqApp, selector: str) -> Any:
    """What a Static of the Overview shows."""
    return app.query_one(Overview).query_one(selector, Static).content


def shown(app: NaqApp, selector: str) -> str:
    """The text a Static of the Overview shows."""
    text = content(app, selector)
    assert isinstance(text, Text)
    return text.plain


def attention_text(app: NaqApp) -> str:
    """The Overview's problems, one a line, joined by " | "."""
    drawn = content(app, "#ov-attention")
    lines = drawn.renderables if isinstance(drawn, Group) else [drawn]
    return " | ".join(line.plain for line in lines)


def columns_of(table: Any) -> dict[str, list[str]]:
    """A Rich table's columns: header -> the text of its cells."""
    assert isinstance(table, Table)
    return {
        str(column.header): [getattr(c, "plain", str(c)) for c in column.cells]
        for column in table.columns
    }


def queue_cells(app: NaqApp) -> dict[str, list[str]]:
    """The Overview's queues table: queue -> the text of its cells."""
    table = content(app, "#ov-queues")
    assert isinstance(table, Table)
    columns = [[getattr(c, "plain", str(c)) for c in column.cells] for column in table.columns]
    return {row[0]: list(row) for row in zip(*columns, strict=True)}


async def test_the_app_opens_on_the_overview_and_flags_the_problems() -> None:
    async with running(pane=None) as (app, pilot, _):
        assert app.pane == "overview"
        assert app.focused is None  # the app's keys are all the Overview has
        problems = attention_text(app)
        # The paused queue whose oldest job keeps waiting, the failing function, the idle worker.
        assert "queue reports: oldest job waiting 5m 12s (paused)" in problems
        assert "billing:charge_card (default) failing: 42% of 412 runs" in problems
        assert "idle while jobs wait: worker-alpha" in problems
        tab = app.query_one(PaneTabs).label("overview")
        assert tab.plain == "0 Overview ▲3"
        queues = queue_cells(app)
        assert queues["reports"][1] == "3"  # depth
        assert queues["reports"][3] == "5m 12s ↑"  # stuck and climbing
        assert queues["default"][3] == "3.2s"
        workers = shown(app, "#ov-workers")
        assert "3/14 slots busy" in workers and "1 idle" in workers
        assert "96 in the last minute" in shown(app, "#ov-failures")


async def test_the_overview_follows_the_changes() -> None:
    async with running(pane=None) as (app, pilot, fake):
        quiet = Series(
            at=NOW,
            step=10.0,
            processed=(5.0,) * 60,
            failed=(0.0,) * 60,
            queues={name: QueueTrend((0,) * 3, (0.0,) * 3) for name in fake.queues},
        )
        fake.emit(
            quiet,
            *(
                Upsert(replace(q, pending=0, latency=0.0, paused=False))
                for q in fake.queues.values()
            ),
            *(Upsert(replace(f, failed=0)) for f in fake.functions.values()),
        )
        await wait_until(pilot, lambda: "nothing needs attention" in attention_text(app))
        assert "0 in the last minute" in shown(app, "#ov-failures")
        tab = app.query_one(PaneTabs).label("overview")
        assert tab.plain == "0 Overview"
        # A queue that no worker takes, with jobs waiting: flagged at once.
        fake.emit(Upsert(QueueRow("orphans", pending=7, latency=LATENCY_STUCK + 1)))
        await wait_until(pilot, lambda: "orphans: 7 waiting, no worker" in attention_text(app))
        assert "queue orphans: oldest job waiting 1m 1s" in attention_text(app)
        assert queue_cells(app)["orphans"][5] == "0"


async def test_the_overview_says_when_there_are_no_metrics_yet() -> None:
    async with running(pane=None) as (app, pilot, fake):
        fake.emit(Series(at=NOW, step=10.0))
        await wait_until(pilot, lambda: "no metrics yet" in shown(app, "#ov-failures"))
        assert "no metrics yet" in str(app.query_one("#ov-chart").border_subtitle)


async def test_key_6_shows_the_metrics_sorted_by_runs() -> None:
    async with running(pane=None) as (app, pilot, fake):
        await pilot.press("6")
        assert app.pane == "metrics"
        table = app.tables["metrics"]
        assert app.focused is table
        assert table.row_count == len(fake.functions) == 6
        assert table.keys[0] == "emails/myapp.tasks:send_email"  # most runs first
        key = "default/myapp.billing:charge_card"
        assert cell(app, "metrics", key, "failure_rate") == "42%"
        assert cell(app, "metrics", key, "duration_p95") == "30.0s"
        assert cell(app, "metrics", key, "wait_p95") == "2.8s"
        assert len(cell(app, "metrics", key, "trend")) == 12  # a sparkline
        await pilot.press("0")
        assert app.pane == "overview"


async def test_the_metrics_pane_sorts_and_filters() -> None:
    async with running(pane="metrics") as (app, pilot, _):
        table = app.tables["metrics"]
        await pilot.press("s")  # runs -> failed, fewest first
        assert app.state.views["metrics"].sort_column == "failed"
        await pilot.press("S")
        assert table.keys[0] == "default/myapp.billing:charge_card"
        await pilot.press("slash", *"reports", "enter")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert table.keys == ["reports/myapp.reports:build_report"]
        tab = app.query_one(PaneTabs).label("metrics")
        assert tab.plain == "6 Metrics 1/6"
        await pilot.press("slash", "escape")
        await wait_until(pilot, lambda: table.row_count == 6)


async def test_the_filter_reads_words_not_the_sparklines_numbers() -> None:
    async with running(pane="metrics") as (app, pilot, fake):
        fake.emit(Upsert(FunctionRow("emails", "myapp.tasks:digest", processed=3, series=(777,))))
        table = app.tables["metrics"]
        await wait_until(pilot, lambda: table.row_count == 7)
        await pilot.press("slash")
        app.query_one(FilterInput).value = "777"
        await wait_until(pilot, lambda: app.state.views["metrics"].filter == "777")
        assert table.row_count == 0
        app.query_one(FilterInput).value = "digest"
        await wait_until(pilot, lambda: table.row_count == 1)


async def test_a_function_that_stops_reporting_leaves_the_metrics_pane() -> None:
    async with running(pane="metrics") as (app, pilot, fake):
        fake.emit(Remove("function", "default/myapp.sync:sync_inventory"))
        fake.emit(Upsert(FunctionRow("emails", "myapp.tasks:digest", processed=3)))
        await wait_until(pilot, lambda: "emails/myapp.tasks:digest" in app.tables["metrics"].keys)
        assert "default/myapp.sync:sync_inventory" not in app.tables["metrics"].keys
        assert cell(app, "metrics", "emails/myapp.tasks:digest", "duration_p95") == "0.000s"


async def test_workers_show_cpu_and_memory_and_queues_their_latency() -> None:
    async with running(pane="workers") as (app, pilot, fake):
        assert cell(app, "workers", "worker-bravo", "cpu") == "63%"
        assert cell(app, "workers", "worker-alpha", "cpu") == "1.5%"
        assert cell(app, "workers", "worker-bravo", "rss") == "412M"
        fake.emit(Upsert(replace(fake.workers["worker-alpha"], cpu_percent=None, rss_bytes=None)))
        await wait_until(pilot, lambda: cell(app, "workers", "worker-alpha", "cpu") == "-")
        assert cell(app, "workers", "worker-alpha", "rss") == "-"
        await pilot.press("1")
        assert cell(app, "queues", "reports", "latency") == "5m 12s"
        assert cell(app, "queues", "emails", "latency") == "<1s"
        await pilot.press("s", "s", "s", "S")  # by latency, longest first
        assert app.state.views["queues"].sort_column == "latency"
        assert app.tables["queues"].keys == ["reports", "default", "emails"]


async def test_the_job_detail_shows_every_attempt_on_a_timeline() -> None:
    async with running(pane="jobs") as (app, pilot, fake):
        app.tables["jobs"].select_key(fake_id("c2"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        columns = columns_of(app.screen.query_one("#attempts", Static).content)
        assert columns["#"] == ["1", "2", "3", "4"]
        assert columns["Worker"][-1] == "worker-charlie"
        assert columns["Started"][0] < columns["Started"][-1]
        assert columns["Took"] == ["1.8s"] * 4
        outcomes = columns["Outcome"]
        assert all(o.startswith("ConnectionError") for o in outcomes[:3]) and outcomes[3] == "ok"
        bars = columns["Timeline"]
        # Each attempt's bar starts right of the one before: the retries' waits show.
        starts = [bar.index("━") for bar in bars]
        assert starts == sorted(starts) and starts[0] == 0 and starts[-1] > starts[0]
        await pilot.press("escape")
        # A job that never ran has no attempts section.
        app.tables["jobs"].select_key(fake_id("p1"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        assert not app.screen.query("#attempts")


async def test_the_new_panes_fit_80x24() -> None:
    async with running(size=(80, 24), pane=None) as (app, pilot, _):
        overview = app.query_one(Overview)
        for part in ("#ov-chart", "#ov-queues-box", "#ov-attention"):
            region = overview.query_one(part).region
            assert region.right <= 80 and region.bottom <= 23, part  # above the footer
        tabs = app.query_one(PaneTabs)
        assert [tabs.label(p).plain.split()[0] for p in ("overview", "metrics")] == [
            "Overview",
            "Metrics",
        ]
        await pilot.press("6")
        assert app.tables["metrics"].region.height >= 15
