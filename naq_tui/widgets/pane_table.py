"""The table of one pane: a virtual table that draws only the rows on screen.

A pane can hold thousands of rows (the Jobs pane keeps up to ``MAX_JOBS``). Drawing
cost must follow the screen, not the data, so a keypress repaints fast at any size:
the order of the rows is a list of keys (recomputed from the state when rows or the
view change, which is a sort of plain Python values), and a row's cells are made
into text only when it is drawn, then kept until the row changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from naq_tui.columns import DEFAULT_SORT, PANE_COLUMNS, Column, row_key
from naq_tui.keys import bindings
from naq_tui.state import Dirty, State, visible

#: Seconds after a drawing within which the clock moving repaints nothing (a little less
#: than the app's tick, so that every tick repaints a table drawn at the tick before).
AGE_EVERY = 0.9
#: Columns whose text depends on the clock; they are re-made when drawn after a tick.
TIME_COLUMNS = frozenset({"heartbeat", "next_run", "duration", "updated", "failed_at"})
#: Terminals narrower than this hide a few columns, so 80 columns show what matters.
WIDE = 100
NARROW_HIDDEN: dict[str, frozenset[str]] = {
    "queues": frozenset({"scheduled", "completed"}),
    "scheduled": frozenset({"job_id", "queue"}),
    "jobs": frozenset({"job_id"}),
    "failed": frozenset({"job_id"}),
    "workers": frozenset({"host", "processed", "rss"}),
    "metrics": frozenset({"queue", "retried", "duration_p50", "duration_max"}),
}
#: ... and cut a few to this many cells (a worker's queues can be a long list).
NARROW_CUT: dict[str, dict[str, int]] = {"workers": {"queues": 22}}
#: Free-text last columns, cut to what the terminal has room for (the detail has it all).
FLEX_COLUMNS = frozenset({"outcome", "error"})
#: Room the other columns of a pane with a free-text column take, roughly.
FLEX_RESERVED = 82
#: The Failed pane's extra first column: a tick on rows marked for a bulk action.
MARK = "mark"
MARK_GLYPH = "✓"
#: Blank cells either side of every cell.
PADDING = 1
#: Rows the header takes at the top of the table.
HEADER_HEIGHT = 1
SORT_ARROWS = {False: " ▲", True: " ▼"}


class PaneTable(ScrollView, can_focus=True):
    """The rows of one table pane (``queues``, ``workers``, ... ``metrics``: see TABLES).

    Rows are keyed by :func:`~naq_tui.columns.row_key`. :meth:`sync` forgets the
    drawn cells of the rows a batch made dirty and re-orders; :meth:`rebuild` starts
    afresh (at mount and when the terminal's width changes the columns shown).
    Column widths only grow, so columns don't jitter as rows come and go.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "pane-table--header",
        "pane-table--even-row",
        "pane-table--cursor",
    }

    DEFAULT_CSS = """
    PaneTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .pane-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .pane-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .pane-table--even-row {
            background: $surface-lighten-1 50%;
        }
        &:dark > .pane-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .pane-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    #: Enter and the cursor keys, from the one table in naq_tui.keys.
    BINDINGS: ClassVar[list[BindingType]] = bindings("table")

    class RowSelected(Message):
        """The row under the cursor was clicked (a first click only moves the cursor)."""

        def __init__(self, table: PaneTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

    class HeaderSelected(Message):
        """A column's header was clicked."""

        def __init__(self, table: PaneTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def __init__(self, pane: str, *, id: str | None = None) -> None:
        super().__init__(id=id or f"table-{pane}")
        self.pane = pane
        self.all_specs: tuple[Column, ...] = PANE_COLUMNS[pane]
        self.specs = self.all_specs
        self.marks = pane == "failed"
        #: Longest text of a free-text column, from the terminal's width.
        self.flex_width = 40
        #: Column -> most cells, on a narrow terminal.
        self.cut: dict[str, int] = {}
        self._state: State | None = None
        self._now = 0.0
        #: Row keys in display order, and each key's position in it.
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        #: The cells made for each row drawn so far, and the clock they were made at.
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._made_at: dict[str, float] = {}
        #: Each column's width: the widest cell or label seen since the last rebuild.
        self._widths: dict[str, int] = {}
        #: Each drawn row's line, with what it was drawn from (its cells, the row's style
        #: and the widths): a row that only moved, or a pane shown again, is not re-made.
        self._lines: dict[str, tuple[tuple[Text, ...], Style, tuple[int, ...], Strip]] = {}
        self._cursor = 0
        self._sort: tuple[str, bool] = DEFAULT_SORT[pane]

    # -- reading ----------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    @property
    def row_count(self) -> int:
        """Rows shown (after the pane's filter)."""
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        """Position of the cursor in the display order."""
        return self._cursor

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        return self._order[self._cursor] if self._order else None

    def header_label(self, column: str) -> str:
        """A column's header as drawn (with the sort arrow on the sorted column)."""
        return self._label(column).plain

    def cell_text(self, key: str, column: str) -> str:
        """The text a row shows in a column (made now if the row wasn't drawn yet)."""
        return self._row_cells(key)[self._column_keys().index(column)].plain

    def column_offset(self, column: str) -> int:
        """The x where a column's cell starts, within the table's content."""
        for key, start, _end in self._column_spans():
            if key == column:
                return start
        raise KeyError(column)

    def _column_spans(self) -> Iterator[tuple[str, int, int]]:
        """Each column's key and its [start, end) x range, padding included."""
        x = 0
        for key in self._column_keys():
            end = x + self._widths[key] + 2 * PADDING
            yield key, x, end
            x = end

    # -- feeding ----------------------------------------------------------------

    def rebuild(self, state: State, now: float) -> None:
        """Start afresh: columns for the terminal's width, widths from the labels."""
        self._fit()
        self._cells.clear()
        self._made_at.clear()
        self._lines.clear()
        self._widths = {MARK: 1} if self.marks else {}
        for spec in self.specs:
            self._widths[spec.key] = max(spec.width or 0, cell_len(spec.label))
        self._order = []
        self.sync(state, Dirty(rows={self.pane: set(state.rows[self.pane])}), now)

    def sync(self, state: State, dirty: Dirty, now: float) -> None:
        """Forget the drawn cells of the dirty rows, then re-order and repaint.

        Rows that stay and didn't change keep their cells; a new filter or sort only
        re-orders keys. Costs a sort of the pane's rows, never a redraw of them.
        """
        self._state, self._now = state, now
        selected = self.selected_key
        for key in dirty.rows.get(self.pane, ()):
            self._forget(key)
        rows = visible(state, self.pane, now)
        self._order = [row_key(row) for row in rows]
        self._index = {key: index for index, key in enumerate(self._order)}
        # Drop the cells of rows gone from the state (kept ones stay for a filter's return).
        live = state.rows[self.pane]
        for key in [key for key in self._cells if key not in live]:
            self._forget(key)
        self._sort = self._sort_of(state)
        self._grow_label(self._sort[0])
        if selected is not None and selected in self._index:
            self._cursor = self._index[selected]
        self._cursor = min(self._cursor, max(0, len(self._order) - 1))
        self._resize()
        self._show_cursor()
        self.refresh()

    def _forget(self, key: str) -> None:
        """Drop what was made to draw ``key``'s row (it changed, or it is gone)."""
        self._cells.pop(key, None)
        self._made_at.pop(key, None)
        self._lines.pop(key, None)

    def refresh_times(self, state: State, now: float) -> None:
        """Move the clock: ages ("4s", "in 3m") are re-made as their rows are drawn.

        Ages are written in whole seconds at the finest: soon after the last drawing
        (within ``AGE_EVERY``) nothing is repainted, as a busy table is drawn once a second
        anyway; the app's once-a-second tick always repaints an idle one.
        """
        moved = now - self._now >= AGE_EVERY or now < self._now
        self._state, self._now = state, now
        if moved and any(spec.key in TIME_COLUMNS for spec in self.specs):
            self.refresh()

    def select_key(self, key: str) -> bool:
        """Move the cursor onto ``key``'s row; False if it is not shown."""
        index = self._index.get(key)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    # -- columns ----------------------------------------------------------------

    def _column_keys(self) -> list[str]:
        return ([MARK] if self.marks else []) + [spec.key for spec in self.specs]

    def _sort_of(self, state: State) -> tuple[str, bool]:
        view = state.views[self.pane]
        if view.sort_column:
            return view.sort_column, view.sort_reverse
        return DEFAULT_SORT[self.pane]

    def _label(self, column: str) -> Text:
        if column == MARK:
            return Text(" ")
        spec = next(spec for spec in self.specs if spec.key == column)
        label = Text(spec.label)
        if column == self._sort[0]:
            label.append(SORT_ARROWS[self._sort[1]], "bold")
        return label

    def _grow_label(self, column: str) -> None:
        if column in self._widths:
            width = cell_len(self._label(column).plain)
            self._widths[column] = max(self._widths[column], width)

    def _fit(self) -> bool:
        """Pick columns and free-text width for the terminal; True if they changed."""
        width = self.app.size.width
        hidden = NARROW_HIDDEN.get(self.pane, frozenset()) if width < WIDE else frozenset()
        specs = tuple(spec for spec in self.all_specs if spec.key not in hidden)
        flex_width = max(24, width - FLEX_RESERVED)
        cut = NARROW_CUT.get(self.pane, {}) if width < WIDE else {}
        changed = (specs, flex_width, cut) != (self.specs, self.flex_width, self.cut)
        self.specs, self.flex_width, self.cut = specs, flex_width, cut
        return changed

    def on_resize(self, event: events.Resize) -> None:
        if self._fit() and self._state is not None:
            self.rebuild(self._state, self._now)
        else:
            self._show_cursor()

    def _resize(self) -> None:
        width = sum(self._widths.values()) + 2 * PADDING * len(self._widths)
        self.virtual_size = Size(width, len(self._order) + HEADER_HEIGHT)

    # -- cells --------------------------------------------------------------------

    def _make_cell(self, spec: Column, row: Any) -> Text:
        value = spec.cell(row, self._now)
        # Text, never markup: "[x]" in an error message is text.
        text = value.copy() if isinstance(value, Text) else Text(value)
        limit = self.flex_width if spec.key in FLEX_COLUMNS else self.cut.get(spec.key)
        if limit is not None and len(text) > limit:
            text.truncate(limit, overflow="ellipsis")
        return text

    def _row_cells(self, key: str) -> tuple[Text, ...]:
        """The cells of ``key``'s row, made if missing and re-aged if the clock moved."""
        assert self._state is not None
        cells = self._cells.get(key)
        row = self._state.rows[self.pane][key]
        if cells is None:
            made: list[Text] = []
            if self.marks:
                marked = key in self._state.marked
                made.append(Text(MARK_GLYPH if marked else " ", "bold green"))
            made.extend(self._make_cell(spec, row) for spec in self.specs)
            cells = tuple(made)
        elif self._made_at.get(key) != self._now:
            offset = 1 if self.marks else 0
            aged = list(cells)
            for index, spec in enumerate(self.specs, offset):
                if spec.key in TIME_COLUMNS:
                    aged[index] = self._make_cell(spec, row)
            if aged == list(cells):
                # Ages read the same ("4s" is still "4s"): the row's drawn line still holds.
                self._made_at[key] = self._now
                return cells
            cells = tuple(aged)
        else:
            return cells
        self._cells[key] = cells
        self._made_at[key] = self._now
        grew = False
        for column, cell in zip(self._column_keys(), cells, strict=True):
            if cell.cell_len > self._widths[column]:
                self._widths[column] = cell.cell_len
                grew = True
        if grew:
            # A wider column moves every cell to its right: repaint the whole table.
            self._resize()
            self.refresh()
        return cells

    # -- drawing ------------------------------------------------------------------

    def _line(self, cells: list[Text], base: Style) -> Strip:
        line = Text(style=base, end="")
        pad = " " * PADDING
        for column, cell in zip(self._column_keys(), cells, strict=True):
            width = self._widths[column]
            line.append(pad)
            if cell.cell_len > width:
                cell = cell.copy()
                cell.truncate(width, overflow="ellipsis")
            line.append_text(cell)
            line.append(" " * (width - cell.cell_len) + pad)
        return Strip(line.render(self.app.console))

    def render_line(self, y: int) -> Strip:
        """Draw line ``y`` of the widget: the header, or the row scrolled there."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y < HEADER_HEIGHT:
            style = base + self.get_component_rich_style("pane-table--header")
            labels = [self._label(column) for column in self._column_keys()]
            strip = self._line(labels, style)
        else:
            index = scroll_y + y - HEADER_HEIGHT
            if index >= len(self._order):
                return Strip.blank(width, base)
            if index == self._cursor:
                style = base + self.get_component_rich_style("pane-table--cursor")
            elif index % 2:
                style = base + self.get_component_rich_style("pane-table--even-row")
            else:
                style = base
            key = self._order[index]
            cells = self._row_cells(key)
            widths = tuple(self._widths.values())
            drawn = self._lines.get(key)
            if drawn is not None and drawn[0] is cells and drawn[1] == style and drawn[2] == widths:
                strip = drawn[3]
            else:
                strip = self._line(list(cells), style)
                if index == self._cursor:
                    # The cursor's colours win over the cells' own, so the row stays legible.
                    strip = Strip(Segment.apply_style(strip, post_style=style), strip.cell_length)
                self._lines[key] = (cells, style, widths, strip)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    # -- cursor -------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER_HEIGHT)

    def _move_cursor(self, index: int) -> None:
        if not self._order:
            return
        index = max(0, min(index, len(self._order) - 1))
        if index != self._cursor:
            self._cursor = index
            self.refresh()
        self._show_cursor()

    def _show_cursor(self) -> None:
        top = round(self.scroll_offset.y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + self._page:
            self.scroll_to(y=self._cursor - self._page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        """Move the cursor up a row."""
        self._move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """Move the cursor down a row."""
        self._move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        """Move the cursor up a screen."""
        self._move_cursor(self._cursor - self._page)

    def action_page_down(self) -> None:
        """Move the cursor down a screen."""
        self._move_cursor(self._cursor + self._page)

    def action_cursor_first(self) -> None:
        """Move the cursor to the first row."""
        self._move_cursor(0)

    def action_cursor_last(self) -> None:
        """Move the cursor to the last row."""
        self._move_cursor(len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        """A header click sorts by it; a row click moves the cursor, a second opens it."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y < HEADER_HEIGHT:
            x = offset.x + round(self.scroll_offset.x)
            for column, start, end in self._column_spans():
                if start <= x < end:
                    self.post_message(self.HeaderSelected(self, column))
            return
        index = round(self.scroll_offset.y) + offset.y - HEADER_HEIGHT
        if index >= len(self._order):
            return
        if index == self._cursor:
            self.post_message(self.RowSelected(self, self._order[index]))
        else:
            self._move_cursor(index)
