"""The TUI's state and the pure reducer that applies changes to it.

No Textual and no I/O here: changes from the service go in, the set of rows
that changed comes out, and the app updates exactly those rows by key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from naq_tui.columns import DEFAULT_SORT, PANE_COLUMNS, row_key, row_text
from naq_tui.service import (
    Change,
    Connection,
    FailedRow,
    FunctionRow,
    JobRow,
    QueueRow,
    Remove,
    Sampling,
    ScheduleRow,
    Series,
    Upsert,
    WorkerRow,
)

#: Panes in the order of their number keys, from 0: the Overview, then the tables.
PANES = ("overview", "queues", "workers", "scheduled", "jobs", "failed", "metrics")
#: The panes that are a table of rows (all but the Overview, which draws from them).
TABLES = PANES[1:]
#: Each pane's title (its tab, its section of the help).
TITLES = {
    "overview": "Overview",
    "queues": "Queues",
    "workers": "Workers",
    "scheduled": "Scheduled",
    "jobs": "Jobs",
    "failed": "Failed",
    "metrics": "Metrics",
}
#: Most jobs kept in memory; the oldest ended ones go first, running ones stay.
MAX_JOBS = 2000
#: Job statuses that are finished.
ENDED = frozenset({"completed", "failed", "cancelled"})

_PANE_OF = {
    QueueRow: "queues",
    WorkerRow: "workers",
    ScheduleRow: "scheduled",
    JobRow: "jobs",
    FailedRow: "failed",
    FunctionRow: "metrics",
}
_PANE_OF_KIND = {
    "queue": "queues",
    "worker": "workers",
    "schedule": "scheduled",
    "job": "jobs",
    "failed": "failed",
    "function": "metrics",
}


def pane_number(pane: str) -> int:
    """The number key that shows ``pane``."""
    return PANES.index(pane)


@dataclass
class PaneView:
    """How a pane is filtered and sorted."""

    filter: str = ""
    sort_column: str | None = None
    sort_reverse: bool = False


@dataclass
class State:
    """Everything the TUI shows."""

    connection: Connection | None = None
    rows: dict[str, dict[str, Any]] = field(default_factory=lambda: {p: {} for p in TABLES})
    views: dict[str, PaneView] = field(default_factory=lambda: {p: PaneView() for p in TABLES})
    #: The Overview's charts, once the service has sent them.
    series: Series | None = None
    #: Keys marked in the Failed pane for bulk requeue / delete.
    marked: set[str] = field(default_factory=set)
    #: Whether the job changes shown are a sample.
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class Dirty:
    """What a batch of changes touched: rows by pane, the connection and the series."""

    rows: dict[str, set[str]] = field(default_factory=dict)
    connection: bool = False
    series: bool = False
    sampling: bool = False

    def add(self, pane: str, key: str) -> None:
        """Note that ``key`` changed in ``pane``."""
        self.rows.setdefault(pane, set()).add(key)

    def __bool__(self) -> bool:
        return self.connection or self.series or self.sampling or any(self.rows.values())


def reduce(state: State, changes: Iterable[Change]) -> Dirty:
    """Apply a batch of changes (bursts are coalesced by the caller) to ``state``."""
    dirty = Dirty()
    for change in changes:
        if isinstance(change, Connection):
            if state.connection != change:
                state.connection = change
                dirty.connection = True
        elif isinstance(change, Upsert):
            pane = _PANE_OF[type(change.row)]
            key = row_key(change.row)
            if state.rows[pane].get(key) != change.row:
                state.rows[pane][key] = change.row
                dirty.add(pane, key)
        elif isinstance(change, Remove):
            pane = _PANE_OF_KIND[change.kind]
            if state.rows[pane].pop(change.key, None) is not None:
                dirty.add(pane, change.key)
                if pane == "failed":
                    state.marked.discard(change.key)
        elif isinstance(change, Series):
            if state.series != change:
                state.series = change
                dirty.series = True
        elif isinstance(change, Sampling):
            if state.sampling != change:
                state.sampling = change
                dirty.sampling = True
    for key in _evict_jobs(state):
        dirty.add("jobs", key)
    return dirty


def _evict_jobs(state: State) -> list[str]:
    jobs: dict[str, JobRow] = state.rows["jobs"]
    excess = len(jobs) - MAX_JOBS
    if excess <= 0:
        return []
    ended = sorted(
        (row for row in jobs.values() if row.status in ENDED),
        key=lambda row: row.ended_at or row.updated_at,
    )
    evicted = [row.job_id for row in ended[:excess]]
    for key in evicted:
        del jobs[key]
    return evicted


def matches(row: Any, text: str) -> bool:
    """Whether ``row`` matches a filter (case-insensitive substring of its text)."""
    if not text:
        return True
    return text.lower() in row_text(row).lower()


def visible(state: State, pane: str, now: float) -> list[Any]:
    """The rows of ``pane`` after its filter and sort, in display order."""
    view = state.views[pane]
    rows = [row for row in state.rows[pane].values() if matches(row, view.filter)]
    columns = {c.key: c for c in PANE_COLUMNS[pane]}
    default_key, default_reverse = DEFAULT_SORT[pane]
    column = columns.get(view.sort_column or default_key, columns[default_key])
    reverse = view.sort_reverse if view.sort_column else default_reverse
    rows.sort(key=lambda row: (column.sort_value(row, now), row_key(row)), reverse=reverse)
    return rows


def cycle_sort(state: State, pane: str, column: str) -> None:
    """Sort ``pane`` by ``column``; the same column again flips the order."""
    view = state.views[pane]
    if view.sort_column == column:
        view.sort_reverse = not view.sort_reverse
    else:
        view.sort_column, view.sort_reverse = column, False


def toggle_mark(state: State, key: str) -> None:
    """Mark or unmark a dead letter for a bulk action."""
    if key in state.marked:
        state.marked.discard(key)
    elif key in state.rows["failed"]:
        state.marked.add(key)


def counts(state: State) -> dict[str, int]:
    """Rows per pane (for the tab labels)."""
    return {pane: len(rows) for pane, rows in state.rows.items()}
