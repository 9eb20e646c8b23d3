"""A job's detail: what it runs, how it went, its attempts, and its result or traceback.

The app fetches the :class:`~naq_tui.service.JobDetail` and hands it over: this
screen does no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar, Static

from naq_tui.columns import ago, clock, short_function, styled, until
from naq_tui.service import JobDetail
from naq_tui.widgets.attempts import attempts_table


def as_json(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON (anything JSON can't say, as its repr)."""
    return json.dumps(value, indent=indent, default=repr, ensure_ascii=False, sort_keys=False)


def _when(ts: float | None, now: float, future: bool = False) -> Text:
    if ts is None:
        return Text("-", "dim")
    relative = until(ts, now) if future else f"{ago(ts, now)} ago"
    return Text.assemble(clock(ts), (f"  ({relative})", "dim"))


def fields_table(detail: JobDetail, now: float) -> Table:
    """The job's facts as a two-column table."""
    table = Table(box=None, show_header=False, padding=(0, 1), expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("Function", Text(detail.function or "-", "cyan"))
    table.add_row("Queue", detail.queue or "-")
    table.add_row("Status", styled(detail.status))
    attempts = f"{detail.attempt} of {detail.max_retries + 1}" if detail.attempt else "not run yet"
    table.add_row("Attempts", attempts)
    table.add_row("Worker", detail.worker or "-")
    table.add_row("Args", as_json(detail.args))
    table.add_row("Kwargs", as_json(detail.kwargs))
    if detail.meta:
        table.add_row("Meta", as_json(detail.meta))
    if detail.depends_on:
        table.add_row("Depends on", ", ".join(detail.depends_on))
    table.add_row("", "")
    table.add_row("Enqueued", _when(detail.enqueued_at, now))
    table.add_row("Started", _when(detail.started_at, now))
    table.add_row("Ended", _when(detail.ended_at, now))
    if detail.next_retry_at is not None:
        table.add_row("Next retry", _when(detail.next_retry_at, now, future=True))
    if detail.started_at is not None and detail.ended_at is not None:
        table.add_row("Took", f"{max(0.0, detail.ended_at - detail.started_at):.3f}s")
    if detail.error:
        table.add_row("Error", Text(detail.error, "bold red"))
    return table


class JobDetailScreen(ModalScreen[None]):
    """Shows one :class:`JobDetail`; escape or q closes it."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("up", "scroll('up')", "Scroll", show=False),
        Binding("down", "scroll('down')", "Scroll", show=False),
    ]

    def __init__(self, detail: JobDetail, now: float) -> None:
        super().__init__(classes="dialog-screen")
        self.detail = detail
        self.now = now

    def compose(self) -> ComposeResult:
        detail = self.detail
        with VerticalScroll(id="job-detail", classes="dialog") as body:
            body.border_title = f"Job {detail.job_id}"
            body.border_subtitle = "escape / q to close"
            yield Label(
                Text.assemble(
                    (short_function(detail.function), "bold"), "  ", styled(detail.status)
                ),
                classes="dialog-title",
            )
            if detail.progress is not None:
                with Horizontal(id="progress-row"):
                    bar = ProgressBar(total=1.0, show_eta=False, id="progress")
                    bar.progress = detail.progress
                    yield bar
                    yield Label(detail.progress_message or "", id="progress-message")
            yield Static(fields_table(detail, self.now), id="fields")
            if detail.attempts:
                yield Label(f"Attempts ({len(detail.attempts)})", classes="section")
                yield Static(
                    attempts_table(detail.attempts, self.now, min(self.app.size.width, 110)),
                    id="attempts",
                )
            if detail.result is not None:
                yield Label("Result", classes="section")
                yield Static(
                    Syntax(as_json(detail.result, indent=2), "json", theme="ansi_dark"),
                    id="result",
                )
            if detail.traceback:
                yield Label("Traceback", classes="section")
                yield Static(
                    Syntax(detail.traceback.rstrip(), "pytb", theme="ansi_dark"),
                    id="traceback",
                )

    def action_close(self) -> None:
        """Close the detail."""
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        """Scroll the body with the arrow keys."""
        body = self.query_one("#job-detail", VerticalScroll)
        if direction == "up":
            body.scroll_up()
        else:
            body.scroll_down()
