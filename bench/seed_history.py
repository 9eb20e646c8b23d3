"""A history of ended jobs, written the way naq writes one: through ``JobStore.end``.

Each end stores the job's result (the first-result-wins create), its final status and its
outcome-log entry, so every reader (``list_jobs``, queue counts, the TUI's feed) sees the
seeded jobs as it would see real ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from naq.broker import Broker
from naq.models import StatusRecord
from naq.store import JobStore

#: Ends gathered at once: enough to keep the connection busy, few enough to stay pipelined.
SEED_BATCH = 500


async def end_jobs(
    broker: Broker,
    records: Callable[[int], StatusRecord],
    count: int,
    *,
    first: int = 0,
    batch: int = SEED_BATCH,
) -> float:
    """End jobs ``first`` .. ``first + count - 1`` in gathered batches of ``batch``; the
    seconds it took.

    ``records(i)`` describes job ``i``: its id, queue, function and arguments, and in its
    ``status`` and ``error`` how it ended (it is the status record ``end`` starts from, as
    the job has none yet).

    Raises:
        RuntimeError: a job had an outcome already (its id was not fresh).
    """
    store = JobStore(broker)
    started = time.perf_counter()
    for low in range(first, first + count, batch):
        chunk = [records(i) for i in range(low, min(first + count, low + batch))]
        stored = await asyncio.gather(
            *(
                store.end(
                    record.job_id,
                    record.status,
                    error=record.error,
                    error_type=record.error.partition(":")[0] if record.error else None,
                    fallback=record,
                )
                for record in chunk
            )
        )
        if not all(stored):
            refused = [r.job_id for r, won in zip(chunk, stored, strict=True) if not won]
            raise RuntimeError(f"{len(refused)} jobs had an outcome already, e.g. {refused[0]}")
    return time.perf_counter() - started
