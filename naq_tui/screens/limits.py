"""The limits dialog: how many of a queue's jobs run at once and how many start per
second, minute or hour, over all its workers; validated as you type."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from naq.errors import ConfigurationError
from naq.limits import QueueLimits, check_concurrency, check_rate
from naq_tui.service import QueueRow

#: The dialog's inputs, in the order they are shown.
FIELDS = ("concurrency", "rate")


def read_concurrency(text: str) -> int | None:
    """The concurrency typed (empty: no limit); raises ConfigurationError naming the value."""
    text = text.strip()
    if not text:
        return None
    # A number goes to the check as a number (so "0" and "-3" are refused as such);
    # anything else as the text, which the check refuses by name.
    value: Any = int(text) if text.lstrip("-").isdigit() else text
    return check_concurrency(value)


def read_rate(text: str) -> str | None:
    """The rate typed, in its written form (empty: no limit); raises ConfigurationError
    naming the value."""
    text = text.strip()
    return check_rate(text) if text else None


class LimitsScreen(ModalScreen[QueueLimits | None]):
    """Dismisses with the queue's new :class:`~naq.limits.QueueLimits`, or None when
    cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, queue: QueueRow) -> None:
        super().__init__(classes="dialog-screen")
        self.queue = queue

    def compose(self) -> ComposeResult:
        limits = self.queue.limits
        with Vertical(id="limits", classes="dialog"):
            yield Label(f"Limits of queue {self.queue.name}", classes="dialog-title")
            yield Label(f"now: {limits.describe() or 'no limits'}", id="current", classes="hint")
            yield Label("They hold over all its workers. Empty: no limit.", classes="hint")
            yield Label("Concurrency: most of its jobs running at once", classes="field-label")
            concurrency = "" if limits.concurrency is None else str(limits.concurrency)
            yield Input(concurrency, placeholder="e.g. 5", id="concurrency", compact=True)
            yield Label("", id="concurrency-error", classes="field-error")
            yield Label("Rate: most job starts per second, minute or hour", classes="field-label")
            yield Input(
                limits.rate or "", placeholder="e.g. 20/s, 100/m, 5/h", id="rate", compact=True
            )
            yield Label("", id="rate-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#concurrency", Input).focus()
        self.validate_fields()

    def validate_fields(self) -> QueueLimits | None:
        """Check both fields, show their errors; the limits if both are valid."""
        readers = {"concurrency": read_concurrency, "rate": read_rate}
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for field in FIELDS:
            try:
                values[field] = readers[field](self.query_one(f"#{field}", Input).value)
            except ConfigurationError as exc:
                errors[field] = str(exc)
        for field in FIELDS:
            error = errors.get(field, "")
            label = self.query_one(f"#{field}-error", Label)
            label.update(error)
            label.set_class(bool(error), "-shown")
            self.query_one(f"#{field}", Input).set_class(bool(error), "-invalid")
        self.query_one("#save", Button).disabled = bool(errors)
        if errors:
            return None
        return QueueLimits(**values)

    def _save(self) -> None:
        limits = self.validate_fields()
        if limits is not None:
            self.dismiss(limits)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.validate_fields()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self._save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
