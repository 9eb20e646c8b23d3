"""The table of one pane, kept in step with the state row by row."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from naq_tui.columns import DEFAULT_SORT, PANE_COLUMNS, Column, row_key
from naq_tui.state import Dirty, State, visible

#: Columns whose text depends on the clock; the 1 s tick refreshes only these.
TIME_COLUMNS = frozenset({"heartbeat", "next_run", "duration", "updated", "failed_at"})
#: Terminals narrower than this hide a few columns, so 80 columns show what matters.
WIDE = 100
NARROW_HIDDEN: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"job_id", "queue"}),
    "jobs": frozenset({"job_id"}),
    "failed": frozenset({"job_id"}),
}
#: Free-text last columns, cut to what the terminal has room for (the detail has it all).
FLEX_COLUMNS = frozenset({"outcome", "error"})
#: Room the other columns of a pane with a free-text column take, roughly.
FLEX_RESERVED = 82
#: More rows than this leaving in one batch: redraw the table instead of removing each.
BULK_REMOVALS = 50
#: The Failed pane's extra first column: a tick on rows marked for a bulk action.
MARK = "mark"
MARK_GLYPH = "✓"


def _same(a: Any, b: Any) -> bool:
    """Whether two cells draw the same (rich ``Text`` equality ignores the base style)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return type(a) is type(b) and a == b


class PaneTable(DataTable[Any]):
    """A DataTable for one pane (``queues``, ``workers``, ``scheduled``, ``jobs``, ``failed``).

    Rows are keyed by :func:`~naq_tui.columns.row_key`. :meth:`sync` touches only the
    rows a batch of changes made dirty (``update_cell`` per changed cell, ``add_row``
    for new keys, ``remove_row`` for gone ones) and re-orders only when the order
    changed; the table is rebuilt only when the pane's filter or sort changes.
    """

    BINDINGS = [
        # Replaces DataTable's hidden "select" so the footer shows what enter does.
        Binding("enter", "app.open_detail", "Open"),
    ]

    def __init__(self, pane: str, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id or f"table-{pane}")
        self.pane = pane
        self.all_specs: tuple[Column, ...] = PANE_COLUMNS[pane]
        self.specs = self.all_specs
        self.marks = pane == "failed"
        #: Longest text of a free-text column, from the terminal's width.
        self.flex_width = 40
        self._state: State | None = None
        self._now = 0.0
        #: The cells drawn for each row key, to update only the cells that changed.
        self._cells: dict[str, tuple[Any, ...]] = {}
        #: The widest cell seen in each column since the last rebuild (widths only grow).
        self._widths: dict[str, int] = {}
        #: The filter and the (sort column, reverse) the rows are drawn for.
        self._filter: str | None = None
        self._sort: tuple[str | None, bool] = (None, False)

    # -- reading ----------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Row keys in display order."""
        return [str(row.key.value) for row in self.ordered_rows]

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # cursor out of range while rows are being removed
            return None

    # -- drawing ----------------------------------------------------------------

    def _render_row(self, row: Any, state: State, now: float) -> tuple[Any, ...]:
        # The first cell is always a fresh Text: _reorder ranks rows by its identity.
        cells: list[Any] = []
        if self.marks:
            key = row_key(row)
            cells.append(Text(MARK_GLYPH if key in state.marked else " ", "bold green"))
        for spec in self.specs:
            value = spec.cell(row, now)
            # Text, never str: DataTable would parse a str as markup ("[x]" in an error).
            value = value.copy() if isinstance(value, Text) else Text(value)
            if spec.key in FLEX_COLUMNS and len(value) > self.flex_width:
                value.truncate(self.flex_width, overflow="ellipsis")
            cells.append(value)
        return tuple(cells)

    def _column_keys(self) -> list[str]:
        return ([MARK] if self.marks else []) + [spec.key for spec in self.specs]

    def _sort_of(self, state: State) -> tuple[str, bool]:
        view = state.views[self.pane]
        default_key, default_reverse = DEFAULT_SORT[self.pane]
        if view.sort_column:
            return view.sort_column, view.sort_reverse
        return default_key, default_reverse

    def _label(self, spec: Column, sort: tuple[str, bool]) -> Text:
        label = Text(spec.label)
        if spec.key == sort[0]:
            label.append(" ▼" if sort[1] else " ▲", "bold")
        return label

    def _relabel(self, state: State) -> bool:
        """Move the sort arrow in the header; False if a label no longer fits its column."""
        sort = self._sort_of(state)
        labels = []
        for spec in self.specs:
            column = self.columns.get(ColumnKey(spec.key))
            if column is None:
                return False
            label = self._label(spec, sort)
            room = column.content_width if column.auto_width else column.width
            if label.cell_len > room:
                return False
            labels.append((column, label))
        for column, label in labels:
            column.label = label
        view = state.views[self.pane]
        self._sort = (view.sort_column, view.sort_reverse)
        return True

    def _fit(self) -> bool:
        """Pick columns and free-text width for the terminal; True if they changed."""
        width = self.app.size.width
        hidden = NARROW_HIDDEN.get(self.pane, frozenset()) if width < WIDE else frozenset()
        specs = tuple(spec for spec in self.all_specs if spec.key not in hidden)
        flex_width = max(24, width - FLEX_RESERVED)
        changed = (specs, flex_width) != (self.specs, self.flex_width)
        self.specs, self.flex_width = specs, flex_width
        return changed

    def on_resize(self, event: events.Resize) -> None:
        if self._fit() and self._state is not None:
            self.rebuild(self._state, self._now)

    def rebuild(self, state: State, now: float) -> None:
        """Draw every row afresh (at start, on resize, after a bulk removal)."""
        self._state, self._now = state, now
        self._fit()
        view = state.views[self.pane]
        self._filter = view.filter
        self._sort = (view.sort_column, view.sort_reverse)
        selected = self.selected_key
        self.clear(columns=True)
        self._cells.clear()
        self._widths = {}
        if self.marks:
            self.add_column(Text(" "), key=MARK, width=1)
        sort = self._sort_of(state)
        for spec in self.specs:
            label = self._label(spec, sort)
            self.add_column(label, key=spec.key, width=spec.width)
            self._widths[spec.key] = label.cell_len
        columns = self._column_keys()
        for row in visible(state, self.pane, now):
            key = row_key(row)
            cells = self._render_row(row, state, now)
            self._cells[key] = cells
            self._grow(columns, cells)
            self.add_row(*cells, key=key)
        self._restore_cursor(selected)

    def sync(self, state: State, dirty: Dirty, now: float) -> None:
        """Apply a batch: update, add and remove the dirty rows, re-sort if needed.

        A new filter adds and removes the rows it lets in or out; a new sort moves
        the header's arrow and the rows; neither redraws the rows that stay.
        """
        self._state, self._now = state, now
        if self._filter is None:
            self.rebuild(state, now)
            return
        view = state.views[self.pane]
        keys = set(dirty.rows.get(self.pane, ()))
        resort = (view.sort_column, view.sort_reverse) != self._sort
        if resort and not self._relabel(state):
            self.rebuild(state, now)
            return
        rows = visible(state, self.pane, now)
        wanted = [row_key(row) for row in rows]
        shown = set(wanted)
        if view.filter != self._filter:
            self._filter = view.filter
            keys |= self._cells.keys() | shown
        if not keys and not resort:
            return
        # DataTable.remove_row costs O(rows): a burst that drops many rows at once (jobs
        # evicted from a full history) is cheaper to draw afresh than row by row.
        leaving = sum(1 for key in keys if key in self._cells and key not in shown)
        if leaving > BULK_REMOVALS:
            self.rebuild(state, now)
            return
        selected = self.selected_key
        changed_order = resort
        columns = self._column_keys()
        for key in keys:
            if key in shown:
                cells = self._render_row(state.rows[self.pane][key], state, now)
                old = self._cells.get(key)
                if old is None:
                    self._grow(columns, cells)
                    self.add_row(*cells, key=key)
                    changed_order = True
                else:
                    for column, before, after in zip(columns, old, cells, strict=True):
                        if not _same(before, after):
                            self._update(key, column, after)
                    # Keep the drawn first cell: it is the row's identity for _reorder.
                    cells = (old[0], *cells[1:]) if _same(old[0], cells[0]) else cells
                self._cells[key] = cells
            elif key in self._cells:
                self.remove_row(key)
                del self._cells[key]
                changed_order = True
        if changed_order or self.keys != wanted:
            self._reorder(wanted)
            self._restore_cursor(selected)

    def refresh_times(self, state: State, now: float) -> None:
        """Redraw the clock-relative cells (ages, "in 3m") of every row."""
        self._state, self._now = state, now
        columns = [
            (index, spec)
            for index, spec in enumerate(self.specs, 1 if self.marks else 0)
            if spec.key in TIME_COLUMNS
        ]
        if not columns:
            return
        rows = state.rows[self.pane]
        for key, cells in self._cells.items():
            row = rows.get(key)
            if row is None:
                continue
            new = list(cells)
            for index, spec in columns:
                value = spec.cell(row, now)
                value = value.copy() if isinstance(value, Text) else Text(value)
                if not _same(cells[index], value):
                    self._update(key, spec.key, value)
                    new[index] = value
            self._cells[key] = tuple(new)

    # -- cells and widths -------------------------------------------------------

    def _grow(self, columns: list[str], cells: tuple[Any, ...]) -> None:
        for column, cell in zip(columns, cells, strict=True):
            width = cell_len(cell) if isinstance(cell, str) else cell.cell_len
            if width > self._widths.get(column, 0):
                self._widths[column] = width

    def _update(self, key: str, column: str, value: Any) -> None:
        # Ask DataTable to re-measure only when the column must grow: a cell that got
        # narrower makes it measure every cell of the column (O(rows) per update), and
        # every age on the screen gets narrower or wider once a second.
        width = cell_len(value) if isinstance(value, str) else value.cell_len
        grow = width > self._widths.get(column, 0)
        if grow:
            self._widths[column] = width
        self.update_cell(key, column, value, update_width=grow)

    # -- order and cursor -------------------------------------------------------

    def _reorder(self, keys: list[str]) -> None:
        # DataTable.sort hands the key function a row's cells, not its key; every row's
        # first cell is a distinct Text object we keep in self._cells, so its identity
        # names the row, and the rows take the order of ``keys`` with public API only.
        rank = {id(self._cells[key][0]): index for index, key in enumerate(keys)}
        first = self._column_keys()[0]
        self.sort(first, key=lambda cell: rank.get(id(cell), len(rank)))

    def _restore_cursor(self, key: str | None) -> None:
        if key is None or key not in self._cells:
            return
        index = self.get_row_index(key)
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)

    def select_key(self, key: str) -> bool:
        """Move the cursor onto ``key``'s row; False if it is not shown."""
        if key not in self._cells:
            return False
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True
