"""The outcome log read back: how many jobs of a queue ended how, and the newest ended.

:class:`~naq.store.JobStore` logs every ended job once (only the winner of its result
writes), as one small message on ``naq.outcome.<queue>.<outcome>`` whose payload is the
job id. Counts are the server's per-subject message counts, so a retried or redelivered
job counts once and nothing is scanned; the newest ended jobs are read from the log's
tail, so the cost of a listing follows the size of the page, not of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from naq.broker import Broker
from naq.models import JobStatus
from naq.store import REQUEUED


@dataclass(frozen=True)
class OutcomeCounts:
    """Jobs of one queue by how they ended (a failed job put back no longer counts)."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0


async def outcome_counts(broker: Broker, queue: str | None = None) -> dict[str, OutcomeCounts]:
    """Ended jobs per queue (only ``queue``'s if given), from the log's subject counts."""
    names = broker.names
    await broker.ensure_outcomes_stream()
    subjects = await broker.subject_counts(
        names.outcomes_stream, names.outcome_subject(queue or "*", "*")
    )
    raw: dict[str, dict[str, int]] = {}
    prefix = names.outcome_subject_prefix + "."
    for subject, count in subjects.items():
        name, _, outcome = subject[len(prefix) :].rpartition(".")
        raw.setdefault(name, {})[outcome] = count
    return {
        name: OutcomeCounts(
            completed=by.get(JobStatus.COMPLETED, 0),
            failed=max(0, by.get(JobStatus.FAILED, 0) - by.get(REQUEUED, 0)),
            cancelled=by.get(JobStatus.CANCELLED, 0),
        )
        for name, by in raw.items()
    }


async def newest_ended(
    broker: Broker, queue: str | None, outcome: str | None, want: int
) -> tuple[list[str], bool]:
    """Ids of the (at least ``want``) most recently ended jobs, newest first, each once;
    and whether that is the whole log (nothing older is left)."""
    names = broker.names
    await broker.ensure_outcomes_stream()

    def distinct(messages: list[Any]) -> list[str]:
        return list(dict.fromkeys(msg.data.decode() for msg in messages))

    messages, whole = await broker.tail(
        names.outcomes_stream,
        names.outcome_subject(queue or "*", outcome or "*"),
        lambda found: len(distinct(found)) >= want,
        want,
    )
    return distinct(messages), whole
