"""The Overview pane: throughput, queues, workers and failures, problems first.

It holds no data of its own: :meth:`Overview.show` draws it from the app's
:class:`~naq_tui.state.State` (the parts are made by :mod:`naq_tui.summary`).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Label, Static

from naq_tui.charts import ZeroSparkline
from naq_tui.columns import ago
from naq_tui.health import serving
from naq_tui.service import QueueRow, Series
from naq_tui.state import State
from naq_tui.summary import (
    attention,
    failures_text,
    problems,
    queues_table,
    rate,
    workers_text,
)

#: What the chart says before the first metrics arrive.
NO_METRICS = "no metrics yet: workers publish theirs every few seconds"


class Overview(Vertical):
    """Jobs processed and failed per second, each queue's depth and latency, the workers'
    slots, recent failures and what needs attention."""

    def __init__(self) -> None:
        super().__init__(id="overview-view")
        self._state: State | None = None
        self._now = 0.0
        #: Each part's figures as last drawn, and the size they were drawn for.
        self._drawn: dict[str, object] = {}
        self._drawn_size = Size(0, 0)

    def compose(self) -> ComposeResult:
        with Vertical(id="ov-chart") as chart:
            chart.border_title = "Jobs per second"
            with Horizontal(id="ov-processed-row", classes="ov-series"):
                yield Static(id="ov-processed-label", classes="ov-label")
                yield ZeroSparkline(id="ov-processed")
            with Horizontal(id="ov-failed-row", classes="ov-series"):
                yield Static(id="ov-failed-label", classes="ov-label")
                yield ZeroSparkline(id="ov-failed")
            with Horizontal(id="ov-axis"):
                yield Label(id="ov-axis-start")
                yield Label("now", id="ov-axis-end")
        with VerticalScroll(id="ov-queues-box") as box:
            box.border_title = "Queues"
            box.can_focus = False
            yield Static(id="ov-queues")
        with Vertical(id="ov-status"):
            yield Static(id="ov-workers")
            yield Static(id="ov-failures")
            yield Static(id="ov-attention")

    def show(self, state: State, now: float) -> None:
        """Draw everything from ``state``; a part whose figures did not change is left as it
        is (a new content re-lays the screen out: tens of ms on a slow machine)."""
        self._state, self._now = state, now
        series = state.series
        self._put("#ov-chart", series, lambda: self._chart(series))
        width = self.query_one("#ov-queues-box").scrollable_content_region.width or self.size.width
        queues: dict[str, QueueRow] = state.rows["queues"]
        workers = list(state.rows["workers"].values())
        trends = series.queues if series else {}
        shown = [
            (q.name, q.pending, q.latency, q.paused, serving(q, workers), trends.get(q.name))
            for q in queues.values()
        ]
        self._put(
            "#ov-queues",
            (width, shown),
            lambda: self._update("#ov-queues", queues_table(state, width)),
        )
        busy = workers_text(workers, queues)
        self._put("#ov-workers", busy, lambda: self._update("#ov-workers", busy))
        failures = failures_text(series, state.rows["metrics"].values())
        self._put("#ov-failures", failures, lambda: self._update("#ov-failures", failures))
        found = problems(state)
        self._put("#ov-attention", found, lambda: self._update("#ov-attention", attention(found)))

    def _put(self, part: str, key: object, draw: Callable[[], None]) -> None:
        """Draw ``part`` unless what it shows (``key``) is what it showed."""
        if part in self._drawn and self._drawn[part] == key:
            return
        self._drawn[part] = key
        draw()

    def _update(self, selector: str, content: RenderableType) -> None:
        self.query_one(selector, Static).update(content)

    def _chart(self, series: Series | None) -> None:
        chart = self.query_one("#ov-chart")
        processed = self.query_one("#ov-processed", ZeroSparkline)
        failed = self.query_one("#ov-failed", ZeroSparkline)
        if series is None or not series.processed:
            chart.border_subtitle = NO_METRICS
            processed.plot(())
            failed.plot(())
            self._update("#ov-processed-label", Text("processed", "bold"))
            self._update("#ov-failed-label", Text("failed", "bold"))
            self.query_one("#ov-axis").display = False
            return
        chart.border_subtitle = ""
        processed.plot(series.processed)
        failed.plot(series.failed)
        self._update(
            "#ov-processed-label",
            Text.assemble(("processed\n", "bold green"), (rate(series.processed), "dim")),
        )
        self._update(
            "#ov-failed-label",
            Text.assemble(("failed\n", "bold red"), (rate(series.failed), "dim")),
        )
        span = series.step * len(series.processed)
        self.query_one("#ov-axis").display = True
        self.query_one("#ov-axis-start", Label).update(f"{ago(series.at - span, series.at)} ago")

    def on_resize(self, event: Resize) -> None:
        # Shown again at the size it had, it has nothing to redraw (hiding sends no size).
        if event.size == self._drawn_size or not event.size.area:
            return
        self._drawn_size = event.size
        if self._state is not None:
            self._drawn.clear()
            self.show(self._state, self._now)
