"""What the Overview says, as pure functions of the state: Rich tables and text, no widgets.

Each part answers one question at a glance: how do the queues do (depth, latency and
their trends), how busy are the workers, what failed lately, and what needs attention
(a stuck queue, a failing function, jobs no worker takes, idle workers while jobs wait).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from naq_tui.charts import spark
from naq_tui.columns import latency, short_function
from naq_tui.health import (
    climbing,
    failing,
    idle_while_waiting,
    latency_level,
    serving,
    unserved,
)
from naq_tui.service import FunctionRow, QueueRow, QueueTrend, Series, WorkerRow
from naq_tui.state import State

#: Cells of each sparkline of the queues table: at least, and at most.
TREND_MIN, TREND_MAX = 8, 40
#: Room the queues table's other columns take, roughly.
QUEUE_RESERVED = 58
#: Cells of the workers' slots bar.
SLOTS_BAR = 12
#: Seconds the "failures" figure covers.
RECENT_FAILURES = 60.0
#: Latency tone of each level, for the sparklines.
_TONES = {"ok": "green", "slow": "yellow", "stuck": "red"}


@dataclass(frozen=True)
class Problem:
    """One thing that needs attention: what, and how bad (``warning`` or ``error``)."""

    text: str
    severity: str


def problems(state: State) -> list[Problem]:
    """Everything the Overview flags, worst first."""
    queues: dict[str, QueueRow] = state.rows["queues"]
    workers: list[WorkerRow] = list(state.rows["workers"].values())
    trends = state.series.queues if state.series else {}
    found: list[Problem] = []
    for row in sorted(queues.values(), key=lambda row: -row.latency):
        level = latency_level(row.latency)
        rising = climbing(trends.get(row.name, QueueTrend()).latency)
        if level == "stuck" or (level == "slow" and rising):
            why = " (paused)" if row.paused else ""
            found.append(
                Problem(
                    f"queue {row.name}: oldest job waiting {latency(row.latency).plain}{why}",
                    "error" if level == "stuck" else "warning",
                )
            )
        if unserved(row, workers):
            found.append(Problem(f"queue {row.name}: {row.pending} waiting, no worker", "error"))
    for function in failing(state.rows["metrics"].values()):
        found.append(
            Problem(
                f"{short_function(function.function)} ({function.queue}) failing: "
                f"{function.failure_rate:.0%} of {function.processed} runs",
                "error",
            )
        )
    idle = [w.name for w in workers if idle_while_waiting(w, queues)]
    if idle:
        found.append(Problem(f"idle while jobs wait: {', '.join(sorted(idle))}", "warning"))
    found.sort(key=lambda problem: problem.severity != "error")
    return found


def queues_table(state: State, width: int) -> Table:
    """Each queue: depth and latency with their trends, its workers, its state."""
    spark_width = max(TREND_MIN, min(TREND_MAX, (width - QUEUE_RESERVED) // 2))
    trends = state.series.queues if state.series else {}
    workers = list(state.rows["workers"].values())
    table = Table(box=None, padding=(0, 1), expand=True, header_style="bold")
    table.add_column("Queue", no_wrap=True, ratio=1, min_width=8)
    table.add_column("Depth", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True, width=spark_width)
    table.add_column("Latency", justify="right", no_wrap=True, min_width=7)
    table.add_column("", no_wrap=True, width=spark_width)
    table.add_column("Workers", justify="right", no_wrap=True)
    table.add_column("State", no_wrap=True, min_width=6)
    for name in sorted(state.rows["queues"]):
        row: QueueRow = state.rows["queues"][name]
        trend = trends.get(name, QueueTrend())
        level = latency_level(row.latency)
        takers = serving(row, workers)
        table.add_row(
            name,
            str(row.pending),
            spark(trend.pending, spark_width, "blue"),
            latency(row.latency, rising=climbing(trend.latency)),
            spark(trend.latency, spark_width, _TONES[level]),
            Text(str(takers), "bold red" if unserved(row, workers) else ""),
            Text("paused", "yellow") if row.paused else Text("active", "green"),
        )
    if not state.rows["queues"]:
        table.add_row(Text("no queues yet", "dim"), "", "", "", "", "", "")
    return table


def workers_text(workers: Iterable[WorkerRow], queues: dict[str, QueueRow]) -> Text:
    """Busy slots over total as a bar, then how many workers are idle, busy, stopping."""
    rows = list(workers)
    if not rows:
        return Text("Workers  none running", "bold red")
    slots = sum(max(w.concurrency, 0) for w in rows)
    busy = sum(len(w.running) for w in rows)
    filled = round(SLOTS_BAR * busy / slots) if slots else 0
    text = Text.assemble(("Workers ", "bold"), f"{len(rows)} · ")
    text.append("█" * filled, "cyan")
    text.append("░" * (SLOTS_BAR - filled), "dim")
    text.append(f" {busy}/{slots} slots busy")
    by_status: dict[str, int] = {}
    for worker in rows:
        by_status[worker.status] = by_status.get(worker.status, 0) + 1
    waiting = any(idle_while_waiting(w, queues) for w in rows)
    for status in sorted(by_status):
        style = "yellow" if status == "idle" and waiting else ""
        text.append(" · ")
        text.append(f"{by_status[status]} {status}", style)
    return text


def failures_text(series: Series | None, functions: Iterable[FunctionRow]) -> Text:
    """Failures in the last minute, and the function failing the most."""
    text = Text("Failures ", "bold")
    if series is None or not series.failed:
        text.append("no metrics yet", "dim")
        return text
    recent = series.failed_in(RECENT_FAILURES)
    text.append(f"{recent} in the last minute", "bold red" if recent else "green")
    worst = failing(functions)
    if worst:
        top = worst[0]
        text.append(" · worst ")
        text.append(short_function(top.function), "bold")
        text.append(f" {top.failure_rate:.0%}", "bold red")
    return text


def attention(found: list[Problem]) -> RenderableType:
    """The problems, one a line; or that there are none."""
    if not found:
        return Text("✓ nothing needs attention", "green")
    lines = [
        Text.assemble(
            ("▲ " if problem.severity == "error" else "△ ", _SEVERITY[problem.severity]),
            (problem.text, _SEVERITY[problem.severity]),
        )
        for problem in found
    ]
    return Group(*lines)


_SEVERITY = {"error": "bold red", "warning": "yellow"}


def rate(values: tuple[float, ...]) -> str:
    """The latest rate of a series and its peak, on two lines ("14.2/s now", "peak 18.0/s")."""
    if not values:
        return "-"
    return f"{values[-1]:.1f}/s now\npeak {max(values):.1f}/s"
