"""Columns of every pane: label, cell text and sort value, as pure functions.

Shared by the widgets (to draw), the reducer (to filter and sort) and the
tests; no widgets here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text

from naq.limits import QueueLimits
from naq.monitor import queue_order
from naq_tui.charts import spark
from naq_tui.health import LEVEL_STYLES, failure_style, latency_level
from naq_tui.service import FailedRow, FunctionRow, JobRow, QueueRow, ScheduleRow, WorkerRow

STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "bold cyan",
    "retry": "magenta",
    "pending": "white",
    "scheduled": "blue",
    "active": "green",
    "paused": "yellow",
    "idle": "green",
    "busy": "bold cyan",
    "starting": "blue",
    "stopping": "yellow",
}


def ago(ts: float | None, now: float) -> str:
    """``ts`` as a short age ("4s", "3m", "2h", "5d"), or "-"."""
    if ts is None:
        return "-"
    seconds = max(0.0, now - ts)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def until(ts: float | None, now: float) -> str:
    """Time until ``ts`` ("in 4s", "in 3m", "due"), or "-"."""
    if ts is None:
        return "-"
    seconds = ts - now
    if seconds <= 0:
        return "due"
    return "in " + ago(now - seconds, now)


def clock(ts: float | None) -> str:
    """``ts`` as local "YYYY-MM-DD HH:MM:SS", or "-"."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration in seconds, compact ("0.012s", "4.2s", "3m 5s")."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.3f}s"
    if value < 60:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m {int(value % 60)}s"


def latency(value: float, rising: bool = False) -> Text:
    """A queue's latency, coloured by how long its oldest job has waited ("-" when none
    waits), with an arrow when it keeps climbing."""
    if value <= 0:
        return Text("-", "dim")
    text = Text("<1s" if value < 1 else seconds(value), LEVEL_STYLES[latency_level(value)])
    if rising:
        text.append(" ↑", "bold red")
    return text


def size(value: int | None) -> str:
    """Bytes, compact ("84M", "1.2G"), or "-"."""
    if value is None:
        return "-"
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value >= scale:
            amount = value / scale
            return f"{amount:.1f}{unit}" if amount < 10 else f"{amount:.0f}{unit}"
    return f"{value}B"


def percent(value: float | None) -> str:
    """A CPU share ("63%", "0.4%"), or "-"."""
    if value is None:
        return "-"
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"


def styled(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def short_function(path: str | None) -> str:
    """``pkg.module:func`` -> ``module:func`` (the part people recognise)."""
    if not path:
        return "-"
    module, _, name = path.partition(":")
    return f"{module.rsplit('.', 1)[-1]}:{name}" if name else path


def every(row: ScheduleRow) -> str:
    """How a schedule repeats, in a few words."""
    if row.cron:
        return f"cron {row.cron}" + (f" {row.timezone}" if row.timezone else "")
    if row.interval:
        return f"every {seconds(row.interval)}"
    return "once"


@dataclass(frozen=True)
class Column:
    """One column of a pane."""

    key: str
    label: str
    cell: Callable[[Any, float], str | Text]
    sort_value: Callable[[Any, float], Any]
    #: Minimum width, so 80 columns stay readable.
    width: int | None = None


def _num(attribute: str) -> Callable[[Any, float], Any]:
    return lambda row, now: getattr(row, attribute) or 0


def _limit_order(row: QueueRow) -> tuple[float, float]:
    # Tightest first: a queue without a limit sorts after every limited one.
    limits = row.limits
    return (
        limits.concurrency if limits.concurrency is not None else math.inf,
        limits.per_second if limits.per_second is not None else math.inf,
    )


QUEUE_COLUMNS = (
    Column("name", "Queue", lambda r, n: r.name, lambda r, n: r.name),
    Column("pending", "Pending", lambda r, n: str(r.pending), _num("pending")),
    Column("running", "Running", lambda r, n: str(r.running), _num("running")),
    Column("latency", "Latency", lambda r, n: latency(r.latency), _num("latency")),
    Column("scheduled", "Sched", lambda r, n: str(r.scheduled), _num("scheduled")),
    Column("completed", "Done", lambda r, n: str(r.completed), _num("completed")),
    Column("failed", "Failed", lambda r, n: str(r.failed), _num("failed")),
    Column(
        "state",
        "State",
        lambda r, n: styled("paused" if r.paused else "active"),
        lambda r, n: r.paused,
    ),
    Column("rate", "Jobs/s", lambda r, n: f"{r.rate:.1f}", _num("rate")),
    Column("limits", "Limits", lambda r, n: r.limits.describe(), lambda r, n: _limit_order(r)),
)

WORKER_COLUMNS = (
    Column("name", "Worker", lambda r, n: r.name, lambda r, n: r.name),
    Column("status", "Status", lambda r, n: styled(r.status), lambda r, n: r.status),
    Column(
        "queues",
        "Queues",
        lambda r, n: queue_order(r.queues, r.fair),
        lambda r, n: (r.queues, r.fair),
    ),
    Column(
        "jobs",
        "Jobs",
        lambda r, n: f"{len(r.running)}/{r.concurrency}",
        lambda r, n: len(r.running),
    ),
    Column("cpu", "CPU", lambda r, n: percent(r.cpu_percent), _num("cpu_percent")),
    Column("rss", "RSS", lambda r, n: size(r.rss_bytes), _num("rss_bytes")),
    Column("processed", "Done", lambda r, n: str(r.processed), _num("processed")),
    Column("failed", "Failed", lambda r, n: str(r.failed), _num("failed")),
    Column(
        "heartbeat",
        "Beat",
        lambda r, n: ago(r.heartbeat_at, n),
        lambda r, n: -r.heartbeat_at,
    ),
    Column("host", "Host/pid", lambda r, n: f"{r.host}/{r.pid}", lambda r, n: (r.host, r.pid)),
)

SCHEDULE_COLUMNS = (
    Column("job_id", "Id", lambda r, n: r.job_id[:12], lambda r, n: r.job_id),
    Column(
        "function",
        "Function",
        lambda r, n: short_function(r.function),
        lambda r, n: r.function,
    ),
    Column("every", "Schedule", lambda r, n: every(r), lambda r, n: every(r)),
    Column("next_run", "Next run", lambda r, n: until(r.next_run, n), lambda r, n: r.next_run),
    Column("status", "Status", lambda r, n: styled(r.status), lambda r, n: r.status),
    Column(
        "runs",
        "Runs",
        lambda r, n: f"{r.runs}/{r.repeat}" if r.repeat else str(r.runs),
        _num("runs"),
    ),
    Column("queue", "Queue", lambda r, n: r.queue, lambda r, n: r.queue),
)


def _job_outcome(row: JobRow, now: float) -> str | Text:
    if row.status == "running" and row.progress is not None:
        done = int(row.progress * 10)
        bar = "█" * done + "░" * (10 - done)
        return Text(f"{bar} {row.progress:.0%} {row.progress_message or ''}".rstrip(), "cyan")
    if row.error:
        return Text(row.error, "red")
    return ""


JOB_COLUMNS = (
    Column("job_id", "Id", lambda r, n: r.job_id[:12], lambda r, n: r.job_id),
    Column(
        "function",
        "Function",
        lambda r, n: short_function(r.function),
        lambda r, n: r.function,
    ),
    Column("status", "Status", lambda r, n: styled(r.status), lambda r, n: r.status),
    Column(
        "attempt",
        "Try",
        lambda r, n: f"{r.attempt}/{r.max_retries + 1}" if r.attempt else "-",
        _num("attempt"),
    ),
    Column(
        "duration",
        "Took",
        lambda r, n: (
            seconds(r.duration)
            if r.duration is not None
            else (seconds(n - r.started_at) if r.status == "running" and r.started_at else "-")
        ),
        lambda r, n: r.duration or 0,
    ),
    Column("updated", "Age", lambda r, n: ago(r.updated_at, n), lambda r, n: r.updated_at),
    Column("queue", "Queue", lambda r, n: r.queue, lambda r, n: r.queue),
    Column("outcome", "Progress / error", _job_outcome, lambda r, n: r.error or ""),
)

FAILED_COLUMNS = (
    Column("job_id", "Id", lambda r, n: (r.job_id or r.key)[:12], lambda r, n: r.key),
    Column(
        "function",
        "Function",
        lambda r, n: short_function(r.function),
        lambda r, n: r.function or "",
    ),
    Column("queue", "Queue", lambda r, n: r.queue, lambda r, n: r.queue),
    Column("failed_at", "Failed", lambda r, n: ago(r.failed_at, n), lambda r, n: r.failed_at),
    Column("reason", "Reason", lambda r, n: r.reason, lambda r, n: r.reason),
    Column("error", "Error", lambda r, n: Text(r.error or "", "red"), lambda r, n: r.error or ""),
)

#: Cells of the Metrics pane's sparkline column.
TREND_WIDTH = 12


def _failed(row: FunctionRow) -> Text:
    return Text(str(row.failed), failure_style(row))


def _failure_rate(row: FunctionRow) -> Text:
    if not row.processed:
        return Text("-", "dim")
    return Text(f"{row.failure_rate:.0%}", failure_style(row))


def _trend(row: FunctionRow) -> Text:
    return spark(row.series, TREND_WIDTH, "red" if failure_style(row) == "bold red" else "blue")


def _duration(attribute: str) -> Column:
    labels = {
        "duration_p50": "p50",
        "duration_p95": "p95",
        "duration_max": "Max",
        "wait_p95": "Wait p95",
    }
    return Column(
        attribute,
        labels[attribute],
        lambda r, n: seconds(getattr(r, attribute)) if r.processed else "-",
        _num(attribute),
    )


METRIC_COLUMNS = (
    Column("queue", "Queue", lambda r, n: r.queue, lambda r, n: r.queue),
    Column(
        "function",
        "Function",
        lambda r, n: short_function(r.function),
        lambda r, n: r.function,
    ),
    Column("processed", "Runs", lambda r, n: str(r.processed), _num("processed")),
    Column("failed", "Failed", lambda r, n: _failed(r), _num("failed")),
    Column("failure_rate", "Fail%", lambda r, n: _failure_rate(r), _num("failure_rate")),
    Column("retried", "Retried", lambda r, n: str(r.retried), _num("retried")),
    _duration("duration_p50"),
    _duration("duration_p95"),
    _duration("duration_max"),
    _duration("wait_p95"),
    Column("trend", "Trend", lambda r, n: _trend(r), lambda r, n: sum(r.series)),
)

PANE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "queues": QUEUE_COLUMNS,
    "workers": WORKER_COLUMNS,
    "scheduled": SCHEDULE_COLUMNS,
    "jobs": JOB_COLUMNS,
    "failed": FAILED_COLUMNS,
    "metrics": METRIC_COLUMNS,
}

#: Each pane's order before the user picks a column: (column, newest/largest first).
DEFAULT_SORT: dict[str, tuple[str, bool]] = {
    "queues": ("name", False),
    "workers": ("name", False),
    "scheduled": ("next_run", False),
    "jobs": ("updated", True),
    "failed": ("failed_at", True),
    "metrics": ("processed", True),
}


def row_key(row: Any) -> str:
    """The key a row is stored and drawn under."""
    if isinstance(row, (QueueRow, WorkerRow)):
        return row.name
    if isinstance(row, (FailedRow, FunctionRow)):
        return row.key
    return str(row.job_id)


#: Fields that are a chart's numbers, not words to filter by.
_CHART_FIELDS = frozenset({"series"})


def row_text(row: Any) -> str:
    """All of a row's words, for the ``/`` filter."""
    return " ".join(
        _words(v) for k, v in row.__dict__.items() if v is not None and k not in _CHART_FIELDS
    )


def _words(value: Any) -> str:
    # A queue's limits read as the pane shows them ("≤5 at once, 20/s").
    return value.describe() if isinstance(value, QueueLimits) else str(value)
