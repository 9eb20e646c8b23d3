"""The outcome log read back: how many jobs of a queue ended how, and the newest ended.

:class:`~naq.store.JobStore` logs every ended job once (only the winner of its result
writes), as one small message on ``naq.outcome.<queue>.<outcome>`` whose payload is the
job id. Counts are the server's per-subject message counts, so a retried or redelivered
job counts once and nothing is scanned; the newest ended jobs are read from the log's
tail, so the cost of a listing follows the size of the page, not of the history.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from naq.broker import Broker, delivered_so_far
from naq.connection import api
from naq.models import JobStatus
from naq.store import REQUEUED

#: Log entries read from the tail first, per job wanted; the window grows fourfold.
TAIL_FACTOR = 4
MIN_TAIL = 256


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
    subject = names.outcome_subject(queue or "*", outcome or "*")
    try:
        info = await broker.connection.js.stream_info(names.outcomes_stream)
    except Exception as exc:
        raise broker.connection.map_error(exc) from exc
    first, last = int(info.state.first_seq or 0), int(info.state.last_seq or 0)
    if not info.state.messages:
        return [], True
    window = max(MIN_TAIL, want * TAIL_FACTOR)
    while True:
        start = max(first, last - window + 1)
        ids: list[str] = []
        seen: set[str] = set()
        for job_id in reversed(await _read_from(broker, subject, start)):
            if job_id not in seen:
                seen.add(job_id)
                ids.append(job_id)
        if len(ids) >= want or start <= first:
            return ids, start <= first
        window *= TAIL_FACTOR


async def _read_from(broker: Broker, subject: str, start: int) -> list[str]:
    """Payloads (job ids) of the log's messages on ``subject`` from sequence ``start``."""
    connection = broker.connection
    try:
        sub = await connection.js.subscribe(
            subject,
            stream=broker.names.outcomes_stream,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start),
        )
    except Exception as exc:
        raise connection.map_error(exc) from exc
    found: list[str] = []
    try:
        info = await sub.consumer_info()
        expected = delivered_so_far(info) + (info.num_pending or 0)
        for _ in range(expected):
            msg = await sub.next_msg(timeout=10)
            found.append(msg.data.decode())
            if msg.metadata.num_pending == 0:
                break
    except Exception as exc:
        raise connection.map_error(exc) from exc
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found
