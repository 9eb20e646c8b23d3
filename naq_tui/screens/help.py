"""The ``?`` screen: every key and what it does, pane by pane."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

#: (section, [(keys, what they do, is it a mutation)]), in two columns.
LEFT: tuple[tuple[str, tuple[tuple[str, str, bool], ...]], ...] = (
    (
        "Everywhere",
        (
            ("1-5", "switch pane", False),
            ("↑ ↓ pgup", "move the cursor", False),
            (": ctrl+p", "command palette", False),
            ("/", "filter (escape clears)", False),
            ("s  S", "next sort column / reverse", False),
            ("click", "a header sorts by it", False),
            ("?", "this help", False),
            ("q", "quit", False),
        ),
    ),
    (
        "Queues",
        (
            ("p  r", "pause / resume the queue", True),
            ("d", "purge pending (asks)", True),
        ),
    ),
)
RIGHT: tuple[tuple[str, tuple[tuple[str, str, bool], ...]], ...] = (
    (
        "Scheduled",
        (
            ("enter", "its job detail", False),
            ("p  r", "pause / resume", True),
            ("e", "reschedule", True),
            ("c", "delete schedule (asks)", True),
        ),
    ),
    (
        "Jobs",
        (
            ("enter", "job detail", False),
            ("c", "cancel the job (asks)", True),
        ),
    ),
    (
        "Failed",
        (
            ("enter", "job detail", False),
            ("space", "mark / unmark", True),
            ("R", "requeue selected/marked", True),
            ("d", "delete them (asks)", True),
        ),
    ),
)
#: Every (key, description) the help lists.
KEYS = tuple((key, does) for column in (LEFT, RIGHT) for _, rows in column for key, does, _ in rows)


def keys_table(
    sections: tuple[tuple[str, tuple[tuple[str, str, bool], ...]], ...], readonly: bool
) -> Table:
    """Sections of keys as one rich table (mutations dimmed when read-only)."""
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column("Key", style="bold cyan", no_wrap=True, width=10)
    table.add_column("Does", ratio=1)
    for index, (title, rows) in enumerate(sections):
        if index:
            table.add_row("", "")
        table.add_row(Text(title, "bold yellow"), "")
        for key, does, mutation in rows:
            if readonly and mutation:
                table.add_row(Text(key, "dim strike"), Text(does, "dim strike"))
            else:
                table.add_row(key, does)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, readonly: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog") as body:
            body.border_title = "naq keys"
            body.border_subtitle = "escape / q / ? to close"
            if self.readonly:
                yield Label("read-only: struck-out keys are disabled", classes="hint")
            with Horizontal(id="help-columns"):
                yield Static(keys_table(LEFT, self.readonly), classes="help-column")
                yield Static(keys_table(RIGHT, self.readonly), classes="help-column")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
