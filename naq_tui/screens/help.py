"""The ``?`` screen: every key and what it does, pane by pane (from :mod:`naq_tui.keys`)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from naq_tui.keys import HelpSection, help_sections


def columns(sections: Sequence[HelpSection]) -> tuple[list[HelpSection], list[HelpSection]]:
    """The sections in two columns of about equal height, in order."""
    # A section takes its lines, its title and a gap.
    half = sum(len(section.lines) + 2 for section in sections) / 2
    left: list[HelpSection] = []
    height = 0
    for section in sections:
        if left and height >= half:
            break
        left.append(section)
        height += len(section.lines) + 2
    return left, list(sections[len(left) :])


def keys_table(sections: Sequence[HelpSection], readonly: bool) -> Table:
    """Sections of keys as one rich table (mutations struck out when read-only)."""
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column("Key", style="bold cyan", no_wrap=True, width=10)
    table.add_column("Does", ratio=1)
    for index, section in enumerate(sections):
        if index:
            table.add_row("", "")
        table.add_row(Text(section.title, "bold yellow"), "")
        for line in section.lines:
            if readonly and line.mutates:
                table.add_row(Text(line.keys, "dim strike"), Text(line.does, "dim strike"))
            else:
                table.add_row(line.keys, line.does)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, readonly: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.readonly = readonly
        self.sections = help_sections()

    def compose(self) -> ComposeResult:
        left, right = columns(self.sections)
        with VerticalScroll(id="help", classes="dialog") as body:
            body.border_title = "naq keys"
            body.border_subtitle = "escape / q / ? to close"
            if self.readonly:
                yield Label("read-only: struck-out keys are disabled", classes="hint")
            with Horizontal(id="help-columns"):
                yield Static(keys_table(left, self.readonly), classes="help-column")
                yield Static(keys_table(right, self.readonly), classes="help-column")
            yield Label("a click on a column's header sorts by it", id="help-click", classes="hint")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
