"""Ending a job from outside a worker: cancellation, and a dependency that failed.

The result record decides: it is created only if the job has none (first
result wins), and the status record follows whichever result won.
"""

from __future__ import annotations

import time

import msgspec

from naq.broker import Broker, decode_or_none, is_duplicate_result
from naq.models import ResultRecord, StatusRecord, record_encoder, result_decoder


def history_ttl(broker: Broker) -> int:
    """How long an ended job's status is kept: as long as results."""
    return max(broker.settings.default_result_ttl, broker.settings.job_status_ttl)


async def end_job(
    broker: Broker,
    job_id: str,
    status: str,
    *,
    error: str | None = None,
    error_type: str | None = None,
    fallback: StatusRecord | None = None,
) -> bool:
    """Give ``job_id`` the final ``status`` unless it already has an outcome.

    ``fallback`` describes the job when it has no status record yet. Returns
    whether this outcome was the one stored.
    """
    now = time.time()
    result = ResultRecord(
        job_id=job_id, status=status, finished_at=now, error=error, error_type=error_type
    )
    connection = broker.connection
    created = await connection.wait_acks(
        [
            await broker.create_result(
                job_id, record_encoder.encode(result), broker.settings.default_result_ttl
            )
        ]
    )
    outcome = created[0]
    if isinstance(outcome, BaseException):
        if is_duplicate_result(outcome):
            return False
        raise connection.map_error(outcome)
    current = await broker.read_status(job_id)
    base = current or fallback
    if base is not None:
        record = msgspec.structs.replace(
            base, status=status, updated_at=now, ended_at=now, error=error
        )
        await connection.wait_ack(await broker.put_status(record, ttl=history_ttl(broker)))
    return True


async def align_status(broker: Broker, job_id: str) -> None:
    """Make a job's status agree with its stored result (after a lost result race).

    The status is rebuilt from the winning result: its outcome, and the worker and
    attempt that produced it, whatever a stale worker wrote meanwhile.
    """
    entry = await broker.get_entry(await broker.results_kv(), job_id)
    result = decode_or_none(result_decoder, entry.value) if entry else None
    current = await broker.read_status(job_id)
    if result is None or current is None:
        return
    winner = {
        "status": result.status,
        "error": result.error,
        # A worker's outcome names who ran it; an outside one (a cancel) names nobody.
        "worker": result.worker or current.worker,
        "attempt": result.attempt or current.attempt,
    }
    if all(getattr(current, name) == value for name, value in winner.items()):
        return  # the winner's own status (its timestamps may differ by a hair: they stand)
    record = msgspec.structs.replace(
        current,
        updated_at=time.time(),
        ended_at=result.finished_at,
        started_at=result.started_at or current.started_at,
        **winner,
    )
    await broker.connection.wait_ack(await broker.put_status(record, ttl=history_ttl(broker)))
