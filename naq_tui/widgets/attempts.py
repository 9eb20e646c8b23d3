"""A job's attempts as a timeline: one line each, a bar placing it in time beside its
worker, start, duration and error, so retries and the waits between them show at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.table import Table
from rich.text import Text

from naq_tui.columns import seconds
from naq_tui.service import Attempt

#: Cells of the timeline bar: at least, at most; and the room the other columns take.
BAR_MIN, BAR_MAX, BAR_RESERVED = 12, 40, 70
TRACK = "·"
RUN = "━"


def _clock(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _style(attempt: Attempt) -> str:
    if attempt.error_type or attempt.error:
        return "red"
    return "cyan" if attempt.ended_at is None else "green"


def bars(attempts: Sequence[Attempt], now: float, width: int) -> list[Text]:
    """Each attempt's bar on one time axis, from the first start to the last end (or now)."""
    starts = [a.started_at for a in attempts if a.started_at is not None]
    if not starts:
        return [Text(TRACK * width, "dim") for _ in attempts]
    first = min(starts)
    last = max([a.ended_at or now for a in attempts if a.started_at is not None] + [first])
    span = max(last - first, 1e-9)
    made = []
    for attempt in attempts:
        if attempt.started_at is None:
            made.append(Text(TRACK * width, "dim"))
            continue
        begin = min(width - 1, int((attempt.started_at - first) / span * width))
        end = (attempt.ended_at or now) - first
        cells = max(1, min(width, round(end / span * width)) - begin)
        bar = Text(TRACK * begin, "dim")
        bar.append(RUN * cells, _style(attempt))
        bar.append(TRACK * (width - begin - cells), "dim")
        made.append(bar)
    return made


def outcome(attempt: Attempt) -> Text:
    """How an attempt ended: its error, ``running``, or ``ok``."""
    if attempt.error_type or attempt.error:
        kind = attempt.error_type or "error"
        return Text(f"{kind}: {attempt.error}" if attempt.error else kind, "red")
    if attempt.ended_at is None:
        return Text("running", "cyan")
    return Text("ok", "green")


def attempts_table(attempts: Sequence[Attempt], now: float, width: int) -> Table:
    """The attempts, oldest first: number, worker, start, duration, timeline, outcome."""
    bar_width = max(BAR_MIN, min(BAR_MAX, width - BAR_RESERVED))
    table = Table(box=None, padding=(0, 1), expand=True, header_style="bold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Worker", no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column("Started", no_wrap=True)
    table.add_column("Took", justify="right", no_wrap=True)
    table.add_column("Timeline", no_wrap=True, width=bar_width)
    table.add_column("Outcome", no_wrap=True, overflow="ellipsis", ratio=1)
    for attempt, bar in zip(attempts, bars(attempts, now, bar_width), strict=True):
        running = attempt.ended_at is None and attempt.started_at is not None
        took = (now - (attempt.started_at or now)) if running else attempt.duration
        table.add_row(
            str(attempt.number),
            attempt.worker or "-",
            _clock(attempt.started_at),
            seconds(took),
            bar,
            outcome(attempt),
        )
    return table
