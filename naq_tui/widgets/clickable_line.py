"""A line of items drawn as one widget, each one highlighted under the mouse and clicked
on its own (the footer's keys, the panes' tabs)."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.events import Click, Leave, MouseMove
from textual.style import Style
from textual.widget import Widget

#: What an item is known by (a key's index, a pane's name).
Item = TypeVar("Item")


class ClickableLine(Widget, Generic[Item], can_focus=False):
    """A widget whose first line shows items side by side: :meth:`render` records where it
    drew each in ``_spans``; :meth:`clicked` is told which one a click landed on."""

    ALLOW_SELECT = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        #: Where each item was last drawn on the first line: (first column, past the last).
        self._spans: list[tuple[int, int, Item]] = []
        #: The item under the mouse, drawn highlighted.
        self._hovered: Item | None = None

    def _part_styles(self) -> dict[str, Style]:
        """The style of each part it draws (its component classes), looked up once a drawing."""
        return {name: self.get_visual_style(name, partial=True) for name in self.COMPONENT_CLASSES}

    def clicked(self, item: Item) -> None:
        """An item was clicked."""
        raise NotImplementedError

    def _at(self, x: int, y: int) -> Item | None:
        """The item drawn at (``x``, ``y``), if any."""
        if y == 0:
            for start, end, item in self._spans:
                if start <= x < end:
                    return item
        return None

    def on_mouse_move(self, event: MouseMove) -> None:
        self._hover(self._at(event.x, event.y))

    def on_leave(self, event: Leave) -> None:
        self._hover(None)

    def _hover(self, item: Item | None) -> None:
        if item != self._hovered:
            self._hovered = item
            self.refresh()

    def on_click(self, event: Click) -> None:
        item = self._at(event.x, event.y)
        if item is not None:
            event.stop()
            self.clicked(item)
