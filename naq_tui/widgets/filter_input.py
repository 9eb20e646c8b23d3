"""The ``/`` filter: an input docked at the bottom that filters the current pane live."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    """Typing filters live; enter keeps the filter and closes; escape clears and closes."""

    BINDINGS = [Binding("escape", "clear_and_close", "Clear filter")]

    class Closed(Message):
        """The filter input was closed (``cleared``: by escape, which empties it)."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def __init__(self) -> None:
        super().__init__(placeholder="filter: type to narrow the rows", id="filter", compact=True)

    def action_clear_and_close(self) -> None:
        """Empty the filter and give the keyboard back to the table."""
        self.value = ""
        self.post_message(self.Closed(cleared=True))

    async def action_submit(self) -> None:
        """Enter: keep the filter and give the keyboard back to the table."""
        self.post_message(self.Closed(cleared=False))
