"""The tabs of the panes: their labels on one line and the shown one's underline below.

One widget draws them all. A label that changes (a count, a problem flag) repaints these
two lines and lays nothing out again; a pane switch moves the underline. A tab is
clicked to show its pane.
"""

from __future__ import annotations

from textual.app import RenderResult
from textual.content import Content
from textual.message import Message
from textual.style import Style as VisualStyle

from naq_tui.widgets.clickable_line import ClickableLine

#: Blank cells either side of each label.
PADDING = 1
#: The parts drawn in their own styles.
STYLES = (
    "pane-tabs--tab",
    "pane-tabs--active",
    "pane-tabs--hover",
    "pane-tabs--bar",
    "pane-tabs--highlight",
)


class PaneTabs(ClickableLine[str]):
    """``0 Overview ▲3  1 Queues 3  …`` over ``━━━━━╸━━━━━━╺━━━━``; its items are panes."""

    COMPONENT_CLASSES = set(STYLES)
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
        styles = {name: self.get_visual_style(name, partial=True) for name in STYLES}
        spans: list[tuple[int, int, str]] = []
        tabs: list[Content] = []
        # Too narrow for every tab: the line starts late enough to show the shown pane's.
        active_end = 0
        column = 0
        for pane in self._labels:
            tab = self._tab(pane, styles)
            tabs.append(tab)
            column += tab.cell_length
            if pane == self._active:
                active_end = column
        shift = max(0, active_end - width)
        column = -shift
        for pane, tab in zip(self._labels, tabs, strict=True):
            spans.append((column, column + tab.cell_length, pane))
            column += tab.cell_length
        self._spans = spans
        labels = Content("").join(tabs)[shift:].truncate(width, pad=True)
        return Content("\n").join([labels, self._bar(width, spans, styles)])

    def _bar(
        self, width: int, spans: list[tuple[int, int, str]], styles: dict[str, VisualStyle]
    ) -> Content:
        bar, highlight = styles["pane-tabs--bar"], styles["pane-tabs--highlight"]
        start, end = next(
            ((s + PADDING, e - PADDING) for s, e, pane in spans if pane == self._active), (0, 0)
        )
        start, end = max(0, min(start, width)), max(0, min(end, width))
        parts = [Content.styled("━" * start, bar)]
        if start:
            parts[0] = Content.styled("━" * (start - 1) + "╸", bar)
        parts.append(Content.styled("━" * (end - start), highlight))
        if end < width:
            parts.append(Content.styled("╺" + "━" * (width - end - 1), bar))
        return Content("").join(parts)

    def clicked(self, item: str) -> None:
        """A tab clicked: show its pane."""
        self.post_message(self.Chosen(item))
