"""The reschedule dialog: a new cron, interval or next run, validated as you type."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from naq_tui.columns import clock, every, short_function
from naq_tui.service import ScheduleRow


@dataclass(frozen=True)
class Reschedule:
    """What the user asked for (None: leave as it is)."""

    cron: str | None = None
    interval: float | None = None
    next_run: float | None = None


def check_cron(text: str) -> str | None:
    """The error in a cron expression, or None if it is valid (or empty)."""
    if not text:
        return None
    if not croniter.is_valid(text):
        return f"not a valid cron expression: {text!r}"
    return None


def parse_interval(text: str) -> float:
    """A positive number of seconds; raises ValueError naming the value."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"the interval must be a positive number of seconds, not {text!r}")
    return value


def parse_when(text: str) -> float:
    """An ISO 8601 time (``Z`` accepted; no zone means local time) as an epoch."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"not an ISO time (e.g. 2027-01-15T09:30:00Z): {text!r}") from None


class RescheduleScreen(ModalScreen[Reschedule | None]):
    """Dismisses with a :class:`Reschedule`, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, schedule: ScheduleRow) -> None:
        super().__init__(classes="dialog-screen")
        self.schedule = schedule

    def compose(self) -> ComposeResult:
        row = self.schedule
        with Vertical(id="reschedule", classes="dialog"):
            yield Label(f"Reschedule {short_function(row.function)}", classes="dialog-title")
            yield Label(
                f"now: {every(row)}, next run {clock(row.next_run)}", id="current", classes="hint"
            )
            yield Label("Fill what should change; empty fields stay as they are.", classes="hint")
            yield Label("Cron (minute hour day month weekday)", classes="field-label")
            yield Input(placeholder=row.cron or "e.g. */5 * * * *", id="cron", compact=True)
            yield Label("", id="cron-error", classes="field-error")
            yield Label("Interval, seconds", classes="field-label")
            interval = f"{row.interval:g}" if row.interval else "e.g. 300"
            yield Input(placeholder=interval, id="interval", compact=True)
            yield Label("", id="interval-error", classes="field-error")
            yield Label("Next run, ISO time (Z or +hh:mm; none = local)", classes="field-label")
            yield Input(placeholder="e.g. 2027-01-15T09:30:00Z", id="next_run", compact=True)
            yield Label("", id="next_run-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cron", Input).focus()
        self.validate_fields()

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def validate_fields(self) -> Reschedule | None:
        """Check every field, show the errors; the request if all is well."""
        errors: dict[str, str | None] = {"cron": None, "interval": None, "next_run": None}
        cron, interval_text, when_text = (self._value(f) for f in ("cron", "interval", "next_run"))
        errors["cron"] = check_cron(cron)
        interval = next_run = None
        if interval_text:
            try:
                interval = parse_interval(interval_text)
            except ValueError as exc:
                errors["interval"] = str(exc)
            if cron and errors["interval"] is None:
                errors["interval"] = "give a cron or an interval, not both"
        if when_text:
            try:
                next_run = parse_when(when_text)
            except ValueError as exc:
                errors["next_run"] = str(exc)
        for field, error in errors.items():
            label = self.query_one(f"#{field}-error", Label)
            label.update(error or "")
            label.set_class(bool(error), "-shown")
            self.query_one(f"#{field}", Input).set_class(bool(error), "-invalid")
        filled = bool(cron or interval_text or when_text)
        ok = filled and not any(errors.values())
        self.query_one("#ok", Button).disabled = not ok
        if not ok:
            return None
        return Reschedule(cron=cron or None, interval=interval, next_run=next_run)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.validate_fields()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        request = self.validate_fields()
        if request is not None:
            self.dismiss(request)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            request = self.validate_fields()
            if request is not None:
                self.dismiss(request)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
