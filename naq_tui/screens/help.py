"""The ``?`` screen: every key and what it does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

#: (keys, what they do, panes where they apply, is it a mutation)
KEYS: tuple[tuple[str, str, str, bool], ...] = (
    ("1-5", "switch pane: Queues, Workers, Scheduled, Jobs, Failed", "all", False),
    ("tab / click", "move focus / pick a tab or sort by a column", "all", False),
    ("↑ ↓ pgup pgdn", "move the cursor", "all", False),
    (": / ctrl+p", "command palette: jump to a pane, run an action", "all", False),
    ("/", "filter the pane (enter keeps it, escape clears it)", "all", False),
    ("s / S", "sort by the next column / reverse the order", "all", False),
    ("enter", "job detail: args, attempts, timeline, result, traceback", "Jobs Failed Sched", False),
    ("p", "pause the schedule or queue", "Queues Scheduled", True),
    ("r", "resume the schedule or queue", "Queues Scheduled", True),
    ("e", "reschedule: cron, interval or next run", "Scheduled", True),
    ("c", "cancel the job / delete the schedule (asks first)", "Jobs Scheduled", True),
    ("space", "mark / unmark a dead letter for a bulk action", "Failed", False),
    ("R", "requeue the dead letter (or every marked one)", "Failed", True),
    ("d", "purge the queue / delete dead letters (asks first)", "Queues Failed", True),
    ("?", "this help", "all", False),
    ("q", "quit", "all", False),
)


def keys_table(readonly: bool) -> Table:
    """The keys as a rich table (mutations struck out when read-only)."""
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    table.add_column("Key", style="bold cyan", no_wrap=True)
    table.add_column("Does")
    table.add_column("Where", style="dim", no_wrap=True)
    for key, does, where, mutation in KEYS:
        if readonly and mutation:
            table.add_row(Text(key, "dim strike"), Text(f"{does} (read-only)", "dim"), where)
        else:
            table.add_row(key, does, where)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, readonly: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            title = "naq keys" + (" (read-only)" if self.readonly else "")
            yield Label(title, classes="dialog-title")
            yield Static(keys_table(self.readonly), id="keys")
            yield Label("escape / q / ? to close", classes="hint")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
