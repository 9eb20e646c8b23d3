"""Read models for the CLI and the TUI: workers (and, as they grow, queues,
schedules, jobs and dead letters)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from naq.broker import Broker, decode_or_none, read_all
from naq.models import WorkerRecord, worker_decoder
from naq.results import resolve_settings
from naq.settings import Settings
from naq.sync import run_sync


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as its last heartbeat describes it."""

    name: str
    host: str
    pid: int
    queues: list[str]
    status: str
    concurrency: int
    running: list[str]
    processed: int
    failed: int
    started_at: float
    heartbeat_at: float

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, time.time() - self.heartbeat_at)

    @classmethod
    def from_record(cls, record: WorkerRecord) -> WorkerInfo:
        """Build from a heartbeat record."""
        return cls(
            name=record.name,
            host=record.host,
            pid=record.pid,
            queues=list(record.queues),
            status=record.status,
            concurrency=record.concurrency,
            running=list(record.running),
            processed=record.processed,
            failed=record.failed,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``), with the heartbeat age."""
        data = dict(self.__dict__)
        data["heartbeat_age"] = round(self.heartbeat_age, 3)
        return data


async def list_workers(
    *, nats_url: str | None = None, settings: Settings | None = None
) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired, by name.

    Raises:
        NaqConnectionError: NATS can't be reached.
    """
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    entries = await read_all(await broker.workers_kv())
    workers = []
    for entry in entries:
        record = decode_or_none(worker_decoder, entry.value)
        if record is not None and time.time() - record.heartbeat_at <= record.ttl:
            workers.append(WorkerInfo.from_record(record))
    return sorted(workers, key=lambda w: w.name)


def list_workers_sync(*, nats_url: str | None = None) -> list[WorkerInfo]:
    """Blocking form of :func:`list_workers`."""
    return run_sync(list_workers(nats_url=nats_url))
