"""Filter and sort: how each table pane narrows and orders its rows (``/``, ``s``, ``S``,
a click on a header). :class:`~naq_tui.app.NaqApp` builds on this class."""

from __future__ import annotations

from textual import on
from textual.widgets import Input

from naq_tui.actions import PaneActions
from naq_tui.columns import DEFAULT_SORT
from naq_tui.state import cycle_sort
from naq_tui.widgets.filter_input import FilterInput
from naq_tui.widgets.pane_table import MARK, PaneTable


class PaneViews(PaneActions):
    """The filter input and the sort keys of the table on show."""

    def _focus(self, pane: str) -> None:
        """Give the keyboard to the pane's table (or to the Overview)."""
        raise NotImplementedError

    def action_filter(self) -> None:
        """Open the filter input for the current pane."""
        filter_input = self.query_one(FilterInput)
        with filter_input.prevent(Input.Changed):
            filter_input.value = self.state.views[self.pane].filter
        filter_input.display = True
        # At once, not at the next idle moment (focus() defers): the keys typed right after
        # "/" are the filter's, not the pane's ("c" would be cancel).
        self.screen.set_focus(filter_input)

    def _filter_set(self, pane: str, text: str) -> None:
        # The Jobs pane's filter goes to the service too: its matches are all sent, even
        # while the job changes are sampled.
        if pane == "jobs":
            self.service.set_job_filter(text)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        pane = self.pane
        if self.state.views[pane].filter != event.value:
            self.state.views[pane].filter = event.value
            self._filter_set(pane, event.value)
            self._redraw(pane)

    @on(FilterInput.Closed)
    def _filter_closed(self, event: FilterInput.Closed) -> None:
        pane = self.pane
        if event.cleared and self.state.views[pane].filter:
            self.state.views[pane].filter = ""
            self._filter_set(pane, "")
            self._redraw(pane)
        self.query_one(FilterInput).display = False
        self._focus(pane)

    def action_sort(self) -> None:
        """Sort the pane by its next column."""
        pane = self.pane
        # The columns on show (a narrow terminal hides a few).
        keys = [column.key for column in self.tables[pane].specs]
        current = self.state.views[pane].sort_column or DEFAULT_SORT[pane][0]
        index = keys.index(current) if current in keys else -1
        cycle_sort(self.state, pane, keys[(index + 1) % len(keys)])
        self._redraw(pane)

    def action_sort_reverse(self) -> None:
        """Reverse the pane's order."""
        pane = self.pane
        view = self.state.views[pane]
        if view.sort_column is None:
            default_key, default_reverse = DEFAULT_SORT[pane]
            view.sort_column, view.sort_reverse = default_key, not default_reverse
        else:
            view.sort_reverse = not view.sort_reverse
        self._redraw(pane)

    @on(PaneTable.RowSelected)
    def _row_clicked(self, event: PaneTable.RowSelected) -> None:
        # Enter is bound to open_detail directly; this is a click on the selected row.
        if self.check_action("open_detail", ()):
            self.action_open_detail()

    @on(PaneTable.HeaderSelected)
    def _header_clicked(self, event: PaneTable.HeaderSelected) -> None:
        if event.column == MARK:
            return
        cycle_sort(self.state, event.table.pane, event.column)
        self._redraw(event.table.pane)
