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


def fmt_seconds(seconds: float) -> str:
    """A span as short text: "0s", "3.2s", "4m", "2h", "5d"."""
    if seconds < 10:
        return f"{seconds:.1f}s" if seconds >= 0.05 else "0s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def fmt_bytes(size: int | None) -> str:
    """A size in bytes as short text ("812K", "85.2M", "1.4G"), or '-'."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            break
        value /= 1024
    return f"{value:.0f}{unit}" if unit in ("B", "K") or value >= 100 else f"{value:.1f}{unit}"


def fmt_percent(value: float | None) -> str:
    """A percentage as short text ("7%", "0.4%", "153%"), or '-'."""
    if value is None:
        return "-"
    return f"{value:.1f}%" if value < 10 else f"{value:.0f}%"
