"""The tabs of the panes: their labels on one line and the shown one's underline below.

One widget draws them all. A label that changes (a count, a problem flag) repaints these
two lines and lays nothing out again; a pane switch moves the underline. A tab is
clicked to show its pane.
"""

from __future__ import annotations

import itertools

from textual.app import RenderResult
from textual.content import Content
from textual.message import Message
from textual.style import Style as VisualStyle

from naq_tui.widgets.clickable_line import ClickableLine

#: Blank cells either side of each label.
PADDING = 1


class PaneTabs(ClickableLine[str]):
    """``0 Overview ▲3  1 Queues 3  …`` over ``━━━━━╸━━━━━━╺━━━━``; its items are panes."""

    COMPONENT_CLASSES = {
        "pane-tabs--tab",
        "pane-tabs--active",
        "pane-tabs--hover",
        "pane-tabs--bar",
        "pane-tabs--highlight",
    }
    DEFAULT_CSS = """
    PaneTabs {
        height: 2;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
        .pane-tabs--tab {
            color: $foreground 50%;
        }
        .pane-tabs--active {
            color: $foreground;
        }
        .pane-tabs--hover {
            color: $foreground;
        }
        .pane-tabs--bar {
            color: $foreground 10%;
        }
        .pane-tabs--highlight {
            color: $block-cursor-background;
        }
    }
    """

    class Chosen(Message):
        """A tab was clicked: show its pane."""

        def __init__(self, pane: str) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, panes: list[str], active: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: dict[str, Content] = {pane: Content(pane) for pane in panes}
        self._active = active

    @property
    def active(self) -> str:
        """The pane whose tab is underlined."""
        return self._active

    @active.setter
    def active(self, pane: str) -> None:
        if pane not in self._labels:
            raise KeyError(pane)
        if pane != self._active:
            self._active = pane
            self.refresh()

    def label(self, pane: str) -> Content:
        """A tab's label, as drawn (padding left out)."""
        return self._labels[pane]

    def set_label(self, pane: str, label: Content) -> None:
        """Relabel a tab (nothing is drawn when it reads the same)."""
        if self._labels[pane] != label:
            self._labels[pane] = label
            self.refresh()

    # -- drawing --------------------------------------------------------------------

    def _tab(self, pane: str, styles: dict[str, VisualStyle]) -> Content:
        if pane == self._active:
            style = styles["pane-tabs--active"]
        elif pane == self._hovered:
            style = styles["pane-tabs--hover"]
        else:
            style = styles["pane-tabs--tab"]
        pad = " " * PADDING
        return Content.assemble(pad, self._labels[pane], pad).stylize_before(style)

    def render(self) -> RenderResult:
        """The labels, and under them the bar, highlighted under the shown pane's label."""
        width = self.size.width
        styles = self._part_styles()
        tabs = [self._tab(pane, styles) for pane in self._labels]
        ends = list(itertools.accumulate(tab.cell_length for tab in tabs))
        # Too narrow for every tab: the line starts late enough to show the shown pane's.
        shift = max(0, ends[list(self._labels).index(self._active)] - width)
        self._spans = [
            (end - tab.cell_length - shift, end - shift, pane)
            for pane, tab, end in zip(self._labels, tabs, ends, strict=True)
        ]
        labels = Content("").join(tabs)[shift:].truncate(width, pad=True)
        return Content("\n").join([labels, self._bar(width, styles)])

    def _bar(self, width: int, styles: dict[str, VisualStyle]) -> Content:
        """The bar under the labels, highlighted under the shown pane's (as last drawn)."""
        bar, highlight = styles["pane-tabs--bar"], styles["pane-tabs--highlight"]
        start, end = next((s + PADDING, e - PADDING) for s, e, p in self._spans if p == self.active)
        start, end = max(0, min(start, width)), max(0, min(end, width))
        before = "━" * (start - 1) + "╸" if start else ""
        after = "╺" + "━" * (width - end - 1) if end < width else ""
        return Content.assemble(
            Content.styled(before, bar),
            Content.styled("━" * (end - start), highlight),
            Content.styled(after, bar),
        )

    def clicked(self, item: str) -> None:
        """A tab clicked: show its pane."""
        self.post_message(self.Chosen(item))
