"""What commands print besides tables: messages, JSON for scripts, times."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Console

# Soft wrap: a message naming a long id or worker name is never broken by a hard line end.
console = Console(soft_wrap=True, highlight=False)


def to_json(value: Any) -> str:
    """JSON text of ``value`` (dataclasses and unknown types as their str)."""
    import msgspec

    return msgspec.json.encode(value, enc_hook=str).decode()


def fmt_time(ts: float | None) -> str:
    """A UNIX time as local ISO text, or '-'."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
