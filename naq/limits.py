"""A queue's limits across every worker: how many of its jobs run at once, how many start
per second.

Both live on the queue's shared JetStream consumer, so they hold for every worker on any
machine and survive restarts. The concurrency limit is the consumer's ``max_ack_pending``:
the server hands out no more than that many of the queue's jobs until some are acked
(a job counts from its delivery to its ack, once, however often it is redelivered; a job
waiting out a retry delay counts too). The rate is kept in the consumer's metadata, and
workers space the queue's job starts by it together (:mod:`naq.worker.rate`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from naq.errors import ConfigurationError

#: The consumer metadata keys the limits are kept under.
CONCURRENCY_KEY = "naq_concurrency"
RATE_KEY = "naq_rate"
#: Seconds in each rate period a limit may be given per.
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PERIOD_NAMES = {
    "s": "s", "sec": "s", "second": "s",
    "m": "m", "min": "m", "minute": "m",
    "h": "h", "hr": "h", "hour": "h",
}  # fmt: skip
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class QueueLimits:
    """A queue's limits; None means no limit."""

    #: At most this many of the queue's jobs run at the same time, over all workers.
    concurrency: int | None = None
    #: At most this many job starts per period, over all workers: ``"20/s"``, ``"100/m"``.
    rate: str | None = None

    @property
    def per_second(self) -> float | None:
        """The rate as job starts per second."""
        if self.rate is None:
            return None
        count, period = parse_rate(self.rate)
        return count / period

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        return {"concurrency": self.concurrency, "rate": self.rate}

    def describe(self) -> str:
        """``"≤5 at once, 20/s"``, or ``""`` without limits (for listings)."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"≤{self.concurrency} at once")
        if self.rate is not None:
            parts.append(self.rate)
        return ", ".join(parts)


def check_concurrency(value: Any) -> int | None:
    """``value`` as a concurrency limit (None removes it).

    Raises:
        ConfigurationError: not a whole number >= 1 (named in the message).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"concurrency={value!r} must be a whole number >= 1 (None removes the limit)"
        )
    return value


def parse_rate(value: Any) -> tuple[float, float]:
    """``(count, period seconds)`` of a rate such as ``"20/s"``, ``"100/m"`` or ``"5/h"``.

    Raises:
        ConfigurationError: anything else (named in the message).
    """
    match = _RATE.match(value.lower()) if isinstance(value, str) else None
    period = _PERIOD_NAMES.get(match.group(2)) if match else None
    count = float(match.group(1)) if match else 0.0
    if match is None or period is None or not 0 < count < math.inf:
        raise ConfigurationError(
            f"rate={value!r} must look like '20/s', '100/m' or '5/h' (None removes the limit)"
        )
    return count, PERIODS[period]


def check_rate(value: Any) -> str | None:
    """``value`` as a rate in its written form (``"20/s"``; None removes it).

    Raises:
        ConfigurationError: not a rate (named in the message).
    """
    if value is None:
        return None
    count, period = parse_rate(value)
    unit = next(name for name, seconds in PERIODS.items() if seconds == period)
    return f"{count:g}/{unit}"


def limits_of(consumer: Any | None) -> QueueLimits:
    """The limits a queue's consumer (its ``consumer_info``) carries."""
    return limits_of_config(getattr(consumer, "config", None))


def limits_of_config(config: Any | None) -> QueueLimits:
    """The limits a queue's consumer configuration carries (in its metadata)."""
    metadata = getattr(config, "metadata", None) or {}
    concurrency = metadata.get(CONCURRENCY_KEY)
    return QueueLimits(
        concurrency=int(concurrency) if concurrency and concurrency.isdigit() else None,
        rate=metadata.get(RATE_KEY) or None,
    )


def consumer_changes(
    metadata: dict[str, str] | None, limits: QueueLimits, unlimited: int
) -> dict[str, Any]:
    """The consumer configuration fields that give it ``limits`` (its other metadata kept;
    ``unlimited`` is the ``max_ack_pending`` of a queue without a concurrency limit)."""
    kept = {k: v for k, v in (metadata or {}).items() if k not in (CONCURRENCY_KEY, RATE_KEY)}
    if limits.concurrency is not None:
        kept[CONCURRENCY_KEY] = str(limits.concurrency)
    if limits.rate is not None:
        kept[RATE_KEY] = limits.rate
    return {
        "max_ack_pending": limits.concurrency or unlimited,
        "metadata": kept,
    }
