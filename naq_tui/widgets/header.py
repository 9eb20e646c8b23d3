"""The header line: title, server URL, read-only tag, a note while the job changes are
sampled, and the connection indicator."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from naq_tui.service import Connection

#: status -> (glyph, style)
INDICATORS = {
    "connected": ("●", "green"),
    "reconnecting": ("◌", "yellow"),
    "disconnected": ("✕", "red"),
}


def indicator(connection: Connection | None) -> Text:
    """The connection as a coloured glyph, status and detail."""
    if connection is None:
        return Text("◌ connecting", "yellow")
    glyph, style = INDICATORS.get(connection.status, ("?", "red"))
    text = Text(f"{glyph} {connection.status}", style)
    if connection.detail:
        text.append(f": {connection.detail}", style)
    return text


class HeaderBar(Horizontal):
    """One line: ``naq  nats://host:4222  [read-only]  ... ● connected``."""

    def __init__(self, url: str, readonly: bool = False) -> None:
        super().__init__(id="header")
        self.url = url
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        yield Label("naq", id="title")
        yield Label(self.url, id="url")
        if self.readonly:
            yield Label("read-only", id="readonly")
        yield Label("", id="sampling")
        yield Label(indicator(None), id="connection")

    def set_sampling(self, note: str) -> None:
        """Say the job changes shown are a sample (``note`` empty: they are not)."""
        label = self.query_one("#sampling", Label)
        label.update(note)
        label.display = bool(note)

    def set_connection(self, connection: Connection | None) -> None:
        """Show the link's status (and the URL the service reports)."""
        if connection is not None and connection.url:
            self.query_one("#url", Label).update(connection.url)
        label = self.query_one("#connection", Label)
        label.update(indicator(connection))
        label.set_class(connection is not None and connection.status != "connected", "-down")
