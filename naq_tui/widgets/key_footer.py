"""The footer: the keys the shown pane offers, on one line drawn in place.

Textual's own footer rebuilds a widget per key each time the bindings change (every pane
switch and every focus move), and every rebuild re-lays the screen out. This one is a
single line: a change of bindings that reads the same draws nothing, and one that reads
differently repaints that line only. A key is clicked as it is pressed.
"""

from __future__ import annotations

from typing import NamedTuple

from textual.app import RenderResult
from textual.content import Content
from textual.screen import Screen
from textual.style import Style as VisualStyle

from naq_tui.widgets.clickable_line import ClickableLine


class Shown(NamedTuple):
    """One key as the footer shows it."""

    key: str
    display: str
    label: str
    enabled: bool


class KeyFooter(ClickableLine[int]):
    """``⏎ Open  p Pause  …  q Quit        ▏^p Palette``, from the screen's bindings; its
    items are the keys' indices (the palette's is ``len(keys)``)."""

    COMPONENT_CLASSES = {
        "key-footer--key",
        "key-footer--label",
        "key-footer--disabled",
        "key-footer--hover",
    }
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
        .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-footer--label {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .key-footer--disabled {
            text-style: dim;
        }
        .key-footer--hover {
            background: $block-hover-background;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__(id="footer")
        #: The keys on the left, in the bindings' order, one per action.
        self.keys: tuple[Shown, ...] = ()
        #: The command palette's key, shown on the right (None: none).
        self.palette: Shown | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self._bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        # While the terminal has lost the focus, no widget has it either: the footer keeps
        # what it showed rather than flash the app's keys alone (a first drawing is shown
        # whatever the focus: a browser's tab may open unfocused).
        if screen is not self.screen or (self.keys and not self.app.app_focus):
            return
        keys, palette = self._read(screen)
        if (keys, palette) != (self.keys, self.palette):
            self.keys, self.palette = keys, palette
            self.refresh()

    def _read(self, screen: Screen[object]) -> tuple[tuple[Shown, ...], Shown | None]:
        app = self.app
        active = screen.active_bindings
        palette_key = app.COMMAND_PALETTE_BINDING if app.ENABLE_COMMAND_PALETTE else None
        keys: list[Shown] = []
        actions: set[str] = set()
        palette: Shown | None = None
        for key, active_binding in active.items():
            binding, enabled = active_binding.binding, active_binding.enabled
            shown = Shown(binding.key, app.get_key_display(binding), binding.description, enabled)
            if key == palette_key:
                palette = shown
            elif binding.show and binding.action not in actions:
                # Several keys of one action ("q,ctrl+c"): the first one speaks for all.
                actions.add(binding.action)
                keys.append(shown)
        return tuple(keys), palette

    def _item(self, shown: Shown, hovered: bool, styles: dict[str, VisualStyle]) -> Content:
        key = Content.styled(shown.display, styles["key-footer--key"])
        label = Content.styled(f" {shown.label}", styles["key-footer--label"])
        item = key + label
        if not shown.enabled:
            item = item.stylize(styles["key-footer--disabled"])
        if hovered:
            item = item.stylize(styles["key-footer--hover"])
        return item

    def _items(self) -> tuple[Shown, ...]:
        """The keys shown, the palette's last."""
        return self.keys if self.palette is None else (*self.keys, self.palette)

    def render(self) -> RenderResult:
        styles = self._part_styles()
        parts = [
            self._item(shown, i == self._hovered, styles) for i, shown in enumerate(self._items())
        ]
        spans: list[tuple[int, int, int]] = []
        column = 0
        for index, part in enumerate(parts[: len(self.keys)]):
            spans.append((column, column + part.cell_length, index))
            column += part.cell_length + 1
        left = Content(" ").join(parts[: len(self.keys)])
        if self.palette is None:
            self._spans = spans
            return left
        # The palette's key keeps the right end; the others are cut short before it.
        room = max(0, self.size.width - parts[-1].cell_length - 2)
        self._spans = [span for span in spans if span[1] <= room]
        self._spans.append((room + 1, room + 1 + parts[-1].cell_length, len(self.keys)))
        return left.truncate(room, pad=True) + Content.styled("▏", "dim") + parts[-1] + " "

    def clicked(self, item: int) -> None:
        """A key clicked: as though it was pressed (the focused widget's binding runs)."""
        shown = self._items()[item]
        if shown.enabled:
            self.app.simulate_key(shown.key)
        else:
            self.app.bell()
