"""A fake :class:`~naq_tui.service.Service`: fixed data, a fixed clock, no NATS.

It drives the TUI's Pilot tests, its snapshot tests and ``scripts/screenshots.py``.
Everything is deterministic: no real clock, no randomness. Actions change the
fake's rows, push the matching :class:`Upsert` / :class:`Remove` into the change
stream (as the real service would, through its watches) and are recorded in
:attr:`FakeService.calls` so tests can assert on them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from croniter import croniter

from naq.errors import JobNotFoundError
from naq.limits import QueueLimits, check_concurrency, check_rate
from naq_tui.columns import clock, every
from naq_tui.fake_metrics import attempts, function_rows, series
from naq_tui.service import (
    Change,
    Connection,
    FailedRow,
    FunctionRow,
    JobDetail,
    JobRow,
    QueueRow,
    Remove,
    ScheduleRow,
    Series,
    Upsert,
    WorkerRow,
)

#: The fake clock: 2027-01-15 08:00:00 UTC.
NOW = 1_800_000_000.0
URL = "nats://localhost:4222"

_CONNECTION_DETAIL = {
    "connected": "",
    "reconnecting": "connection lost, retrying (attempt 3)",
    "disconnected": "nats: no servers available for connection",
}


def fake_id(name: str) -> str:
    """A stable 32-hex-digit id derived from ``name``."""
    return hashlib.sha1(name.encode()).hexdigest()[:32]


_ARGS: dict[str, tuple[list[Any], dict[str, Any]]] = {
    "myapp.tasks:send_email": (["ada@example.com"], {"template": "welcome", "locale": "en"}),
    "myapp.reports:build_report": (["2026-12"], {"format": "pdf", "pages": 12}),
    "myapp.images:resize_image": (["s3://media/img/8841.jpg"], {"sizes": [128, 512, 1024]}),
    "myapp.billing:charge_card": (["cus_9f8e7d"], {"amount_cents": 4999, "currency": "EUR"}),
    "myapp.maintenance:cleanup_tmp": ([], {"older_than_hours": 24}),
    "myapp.sync:sync_inventory": (["warehouse-3"], {"full": False}),
}

_RESULTS: dict[str, Any] = {
    "myapp.tasks:send_email": {"sent": True, "message_id": "<20270115.4f2a@mail.example.com>"},
    "myapp.reports:build_report": {"path": "reports/2026-12.pdf", "pages": 12, "bytes": 184_220},
    "myapp.images:resize_image": {"variants": {"128": "8841_128.jpg", "512": "8841_512.jpg"}},
    "myapp.billing:charge_card": {"charge_id": "ch_3N1x", "status": "succeeded"},
    "myapp.maintenance:cleanup_tmp": {"removed": 342, "freed_mb": 118.5},
    "myapp.sync:sync_inventory": {"items": 1204, "changed": 17},
}

_TRACEBACKS: dict[str, str] = {
    "ConnectionError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/naq/worker.py", line 312, in _execute\n'
        "    result = await function(*args, **kwargs)\n"
        '  File "/srv/app/myapp/billing.py", line 41, in charge_card\n'
        "    response = await gateway.charge(customer, amount_cents, currency)\n"
        '  File "/srv/app/myapp/gateway.py", line 88, in charge\n'
        "    raise ConnectionError('payment gateway timed out')\n"
        "ConnectionError: payment gateway timed out\n"
    ),
    "ValueError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/naq/worker.py", line 312, in _execute\n'
        "    result = await function(*args, **kwargs)\n"
        '  File "/srv/app/myapp/images.py", line 27, in resize_image\n'
        "    image = decode(blob, fmt)\n"
        '  File "/srv/app/myapp/images.py", line 12, in decode\n'
        "    raise ValueError(f'unsupported image format {fmt!r}')\n"
        "ValueError: unsupported image format 'tiff'\n"
    ),
    "TimeoutError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/naq/worker.py", line 318, in _execute\n'
        "    result = await asyncio.wait_for(call, timeout=job.timeout)\n"
        '  File "/usr/lib/python3.11/asyncio/tasks.py", line 502, in wait_for\n'
        "    raise exceptions.TimeoutError() from exc\n"
        "TimeoutError: job exceeded its 30s timeout\n"
    ),
    "KeyError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/naq/worker.py", line 312, in _execute\n'
        "    result = await function(*args, **kwargs)\n"
        '  File "/srv/app/myapp/tasks.py", line 19, in send_email\n'
        "    customer = payload['customer_id']\n"
        "KeyError: 'customer_id'\n"
    ),
}


def _queues() -> list[QueueRow]:
    return [
        QueueRow(
            "default",
            pending=4,
            running=2,
            scheduled=3,
            completed=1842,
            failed=7,
            rate=3.4,
            latency=3.2,
        ),
        QueueRow(
            "emails",
            pending=2,
            running=1,
            scheduled=1,
            completed=9310,
            failed=2,
            rate=12.8,
            latency=0.6,
            limits=QueueLimits(concurrency=5, rate="20/s"),
        ),
        # Paused five minutes ago: its oldest pending job has waited since then.
        QueueRow(
            "reports",
            pending=3,
            running=0,
            scheduled=1,
            completed=57,
            failed=3,
            paused=True,
            latency=312.0,
            limits=QueueLimits(concurrency=1),
        ),
    ]


def _jobs() -> list[JobRow]:
    # (name, queue, function, status, attempt, max_retries, age of last update, took, error,
    #  progress, progress message)
    # fmt: off
    spec: list[tuple[Any, ...]] = [
        ("r1", "default", "myapp.images:resize_image", "running", 1, 3, 2, None, None, 0.7,
         "512px"),
        ("r2", "emails", "myapp.tasks:send_email", "running", 1, 3, 1, None, None, 0.3, "render"),
        ("r3", "default", "myapp.sync:sync_inventory", "running", 2, 5, 5, None, None, None, None),
        ("t1", "emails", "myapp.tasks:send_email", "retry", 2, 3, 20, 1.8,
         "SMTPServerDisconnected: Connection unexpectedly closed", None, None),
        ("t2", "default", "myapp.billing:charge_card", "retry", 1, 5, 45, 30.0,
         "ConnectionError: payment gateway timed out", None, None),
        ("f1", "default", "myapp.billing:charge_card", "failed", 6, 5, 300, 30.0,
         "ConnectionError: payment gateway timed out", None, None),
        ("f2", "default", "myapp.images:resize_image", "failed", 4, 3, 900, 0.2,
         "ValueError: unsupported image format 'tiff'", None, None),
        ("f3", "reports", "myapp.reports:build_report", "failed", 1, 0, 2400, 30.0,
         "TimeoutError: job exceeded its 30s timeout", None, None),
        ("f4", "emails", "myapp.tasks:send_email", "failed", 4, 3, 5400, 0.01,
         "KeyError: 'customer_id'", None, None),
    ]
    for i in range(10):
        function = list(_ARGS)[i % len(_ARGS)]
        queue = {"myapp.tasks": "emails", "myapp.reports": "reports"}.get(
            function.partition(":")[0], "default"
        )
        # c2 failed three times, then succeeded.
        spec.append((f"c{i}", queue, function, "completed", 4 if i == 2 else 1, 3, 8 + i * 37,
                     0.04 + i * 0.9, None, None, None))
    spec += [
        ("x1", "default", "myapp.sync:sync_inventory", "cancelled", 1, 3, 600, None, None, None,
         None),
        ("x2", "reports", "myapp.reports:build_report", "cancelled", 0, 0, 7200, None, None,
         None, None),
        ("p1", "default", "myapp.images:resize_image", "pending", 0, 3, 3, None, None, None, None),
        ("p2", "emails", "myapp.tasks:send_email", "pending", 0, 3, 4, None, None, None, None),
        ("p3", "reports", "myapp.reports:build_report", "pending", 0, 0, 90, None, None, None,
         None),
        ("p4", "default", "myapp.billing:charge_card", "pending", 0, 5, 12, None, None, None, None),
    ]
    # fmt: on
    workers = {"running": "worker-bravo", "retry": "worker-alpha", "failed": "worker-alpha"}
    rows = []
    for name, queue, function, status, attempt, retries, age, took, error, prog, msg in spec:
        updated = NOW - age
        started = ended = None
        if status == "running":
            started = updated - 4.0
        elif took is not None:
            started, ended = updated - took, updated
        elif status == "cancelled" and attempt:
            started, ended = updated - 12.0, updated
        elif status == "cancelled":
            ended = updated
        worker = workers.get(status, "worker-charlie" if status == "completed" else None)
        rows.append(
            JobRow(
                job_id=fake_id(name),
                queue=queue,
                function=function,
                status=status,
                attempt=attempt,
                max_retries=retries,
                enqueued_at=(started or updated) - 1.5,
                started_at=started,
                ended_at=ended,
                updated_at=updated,
                worker=worker,
                error=error,
                progress=prog,
                progress_message=msg,
            )
        )
    return rows


def _workers(jobs: list[JobRow]) -> list[WorkerRow]:
    running = tuple(j.job_id for j in jobs if j.status == "running")
    return [
        WorkerRow(
            name="worker-alpha",
            host="web-1",
            pid=4101,
            queues=("default", "emails"),
            status="idle",
            concurrency=4,
            running=(),
            processed=5210,
            failed=9,
            heartbeat_at=NOW - 2,
            cpu_percent=1.5,
            rss_bytes=88_080_384,
            fair=True,
        ),
        WorkerRow(
            name="worker-bravo",
            host="web-2",
            pid=4188,
            queues=("default", "emails", "reports"),
            status="busy",
            concurrency=8,
            running=running,
            processed=6032,
            failed=3,
            heartbeat_at=NOW - 1,
            cpu_percent=63.2,
            rss_bytes=432_013_312,
        ),
        WorkerRow(
            name="worker-charlie",
            host="batch-1",
            pid=977,
            queues=("reports",),
            status="stopping",
            concurrency=2,
            running=(),
            processed=57,
            failed=3,
            heartbeat_at=NOW - 14,
            cpu_percent=0.4,
            rss_bytes=63_963_136,
        ),
    ]


def _schedules() -> list[ScheduleRow]:
    return [
        ScheduleRow(
            job_id=fake_id("s-report"),
            queue="reports",
            function="myapp.reports:build_report",
            status="active",
            next_run=NOW + 3600,
            cron="0 * * * *",
            timezone="Europe/Paris",
            runs=412,
            last_run=NOW - 0,
        ),
        ScheduleRow(
            job_id=fake_id("s-cleanup"),
            queue="default",
            function="myapp.maintenance:cleanup_tmp",
            status="active",
            next_run=NOW + 240,
            interval=300.0,
            runs=1290,
            last_run=NOW - 60,
        ),
        ScheduleRow(
            job_id=fake_id("s-sync"),
            queue="default",
            function="myapp.sync:sync_inventory",
            status="paused",
            next_run=NOW + 900,
            cron="*/15 * * * *",
            runs=88,
            last_run=NOW - 5400,
        ),
        ScheduleRow(
            job_id=fake_id("s-billing"),
            queue="default",
            function="myapp.billing:charge_card",
            status="failed",
            next_run=NOW + 45,
            interval=60.0,
            runs=31,
            failures=3,
            last_run=NOW - 15,
            last_error="ConnectionError: payment gateway timed out",
        ),
        ScheduleRow(
            job_id=fake_id("s-digest"),
            queue="emails",
            function="myapp.tasks:send_email",
            status="active",
            next_run=NOW + 1800,
            interval=3600.0,
            repeat=5,
            runs=3,
            last_run=NOW - 1800,
        ),
    ]


def _failed(jobs: dict[str, JobRow]) -> list[FailedRow]:
    rows = []
    for seq, name in ((3, "f1"), (4, "f2"), (5, "f4")):
        job = jobs[fake_id(name)]
        rows.append(
            FailedRow(
                key=job.job_id,
                seq=seq,
                job_id=job.job_id,
                queue=job.queue,
                function=job.function,
                reason="max retries exceeded",
                error=job.error,
                failed_at=job.ended_at or job.updated_at,
                attempt=job.attempt,
            )
        )
    rows.append(
        FailedRow(
            key="#7",
            seq=7,
            job_id=None,
            queue="default",
            function=None,
            reason="malformed message",
            error="could not decode job envelope: expected object, got str",
            failed_at=NOW - 120,
        )
    )
    return rows


class FakeService:
    """A :class:`~naq_tui.service.Service` over fixed, realistic data."""

    def __init__(self, connection_status: str = "connected", url: str = URL) -> None:
        self.url = url
        self.connection_status = connection_status
        #: Every action called, as ``(method name, *arguments)``.
        self.calls: list[tuple[Any, ...]] = []
        jobs = _jobs()
        self.queues: dict[str, QueueRow] = {q.name: q for q in _queues()}
        self.workers: dict[str, WorkerRow] = {w.name: w for w in _workers(jobs)}
        self.schedules: dict[str, ScheduleRow] = {s.job_id: s for s in _schedules()}
        self.jobs: dict[str, JobRow] = {j.job_id: j for j in jobs}
        self.failed: dict[str, FailedRow] = {f.key: f for f in _failed(self.jobs)}
        self.functions: dict[str, FunctionRow] = {f.key: f for f in function_rows()}
        self.series: Series = series(NOW, {q.name: q.latency for q in self.queues.values()})
        self._pending: asyncio.Queue[Change] | None = None

    # -- the protocol: reads ----------------------------------------------------

    def now(self) -> float:
        """The fixed clock."""
        return NOW

    def rows(self) -> list[Any]:
        """Every row, in the order :meth:`changes` sends them."""
        return [
            *self.queues.values(),
            *self.workers.values(),
            *self.schedules.values(),
            *self.jobs.values(),
            *self.failed.values(),
            *self.functions.values(),
        ]

    async def changes(self) -> AsyncIterator[Change]:
        """The connection, every row and the series, then each change an action makes,
        forever."""
        pending = self._queue()
        yield Connection(
            self.connection_status, self.url, _CONNECTION_DETAIL.get(self.connection_status, "")
        )
        for row in self.rows():
            yield Upsert(row)
        yield self.series
        while True:  # nothing else ever happens unless an action or a test pushes a change
            yield await pending.get()

    def emit(self, *changes: Change) -> None:
        """Push changes into the stream (tests use it to simulate the world moving)."""
        queue = self._queue()
        for change in changes:
            queue.put_nowait(change)

    def _queue(self) -> asyncio.Queue[Change]:
        if self._pending is None:
            self._pending = asyncio.Queue()
        return self._pending

    def set_job_filter(self, text: str) -> None:
        """Record the Jobs pane's filter (the fake sends every change anyway)."""
        self.calls.append(("set_job_filter", text))

    async def job_detail(self, job_id: str) -> JobDetail:
        """The detail of a job (or of a schedule's job); raises JobNotFoundError."""
        self.calls.append(("job_detail", job_id))
        if job_id in self.schedules:
            return self._schedule_detail(self.schedules[job_id])
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        args, kwargs = _ARGS.get(job.function, ([], {}))
        exc_name = (job.error or "").partition(":")[0]
        runs = attempts(job)
        # Enqueued before its first attempt, however many there were.
        enqueued = min(
            [job.enqueued_at or NOW, *(a.started_at - 1.5 for a in runs if a.started_at)]
        )
        return JobDetail(
            job_id=job.job_id,
            status=job.status,
            queue=job.queue,
            function=job.function,
            args=list(args),
            kwargs=dict(kwargs),
            meta={"tenant": "acme", "request_id": f"req-{job.job_id[:6]}"},
            progress=job.progress,
            progress_message=job.progress_message,
            attempt=job.attempt,
            max_retries=job.max_retries,
            enqueued_at=enqueued,
            started_at=job.started_at,
            ended_at=job.ended_at,
            next_retry_at=job.updated_at + 30 if job.status == "retry" else None,
            worker=job.worker,
            result=_RESULTS.get(job.function) if job.status == "completed" else None,
            error=job.error,
            traceback=_TRACEBACKS.get(exc_name) if job.status in ("failed", "retry") else None,
            attempts=runs,
        )

    def _schedule_detail(self, row: ScheduleRow) -> JobDetail:
        args, kwargs = _ARGS.get(row.function, ([], {}))
        return JobDetail(
            job_id=row.job_id,
            status=row.status,
            queue=row.queue,
            function=row.function,
            args=list(args),
            kwargs=dict(kwargs),
            meta={"schedule": every(row), "runs": row.runs, "next_run": clock(row.next_run)},
            enqueued_at=row.last_run,
            error=row.last_error,
        )

    # -- the protocol: actions --------------------------------------------------

    async def pause_queue(self, queue: str) -> None:
        """Pause a queue."""
        self.calls.append(("pause_queue", queue))
        self._set_queue(queue, paused=True)

    async def resume_queue(self, queue: str) -> None:
        """Resume a queue."""
        self.calls.append(("resume_queue", queue))
        self._set_queue(queue, paused=False)

    async def purge_queue(self, queue: str) -> int:
        """Drop a queue's pending jobs; returns how many."""
        self.calls.append(("purge_queue", queue))
        row = self._queue_row(queue)
        gone = [j for j in self.jobs.values() if j.queue == queue and j.status == "pending"]
        for job in gone:
            del self.jobs[job.job_id]
            self.emit(Remove("job", job.job_id))
        self._set_queue(queue, pending=0)
        return row.pending

    async def set_limits(
        self, queue: str, concurrency: int | None, rate: str | None
    ) -> QueueLimits:
        """Give a queue these limits (checked as the library checks them)."""
        self.calls.append(("set_limits", queue, concurrency, rate))
        limits = QueueLimits(concurrency=check_concurrency(concurrency), rate=check_rate(rate))
        self._set_queue(queue, limits=limits)
        return limits

    async def pause_schedule(self, job_id: str) -> bool:
        """Pause a schedule."""
        self.calls.append(("pause_schedule", job_id))
        return self._set_status(job_id, "paused")

    async def resume_schedule(self, job_id: str) -> bool:
        """Resume a schedule."""
        self.calls.append(("resume_schedule", job_id))
        return self._set_status(job_id, "active")

    async def cancel_schedule(self, job_id: str) -> bool:
        """Delete a schedule."""
        self.calls.append(("cancel_schedule", job_id))
        if self.schedules.pop(job_id, None) is None:
            raise JobNotFoundError(f"no scheduled job {job_id!r}")
        self.emit(Remove("schedule", job_id))
        return True

    async def reschedule(
        self,
        job_id: str,
        *,
        cron: str | None = None,
        interval: float | None = None,
        next_run: float | None = None,
    ) -> bool:
        """Change a schedule's cron, interval or next run."""
        self.calls.append(("reschedule", job_id, cron, interval, next_run))
        if job_id not in self.schedules:
            raise JobNotFoundError(f"no scheduled job {job_id!r}")
        changes: dict[str, Any] = {}
        if cron is not None:
            changes.update(cron=cron, interval=None)
            changes["next_run"] = croniter(cron, NOW).get_next(float)
        if interval is not None:
            changes.update(interval=interval, cron=None, timezone=None, next_run=NOW + interval)
        if next_run is not None:
            changes["next_run"] = next_run
        return self._set_schedule(job_id, **changes)

    async def cancel_job(self, job_id: str) -> bool:
        """Cancel a pending or running job; False if it had ended."""
        self.calls.append(("cancel_job", job_id))
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        if job.status in ("completed", "failed", "cancelled"):
            return False
        self._set_job(job_id, status="cancelled", ended_at=NOW, updated_at=NOW, progress=None)
        return True

    async def requeue_failed(self, job_ids: list[str]) -> int:
        """Requeue dead letters by job id; returns how many."""
        self.calls.append(("requeue_failed", list(job_ids)))
        count = 0
        for dead in [f for f in self.failed.values() if f.job_id in job_ids]:
            del self.failed[dead.key]
            self.emit(Remove("failed", dead.key))
            if dead.job_id in self.jobs:
                self._set_job(
                    dead.job_id,
                    status="pending",
                    attempt=0,
                    error=None,
                    started_at=None,
                    ended_at=None,
                    updated_at=NOW,
                )
            count += 1
        return count

    async def delete_failed(self, keys: list[str]) -> int:
        """Delete dead letters by key; returns how many."""
        self.calls.append(("delete_failed", list(keys)))
        count = 0
        for key in keys:
            if self.failed.pop(key, None) is not None:
                self.emit(Remove("failed", key))
                count += 1
        return count

    # -- helpers ----------------------------------------------------------------

    def _queue_row(self, queue: str) -> QueueRow:
        row = self.queues.get(queue)
        if row is None:
            raise ValueError(f"unknown queue {queue!r}")
        return row

    def _set_queue(self, queue: str, **changes: Any) -> None:
        row = replace(self._queue_row(queue), **changes)
        self.queues[queue] = row
        self.emit(Upsert(row))

    def _set_status(self, job_id: str, status: str) -> bool:
        row = self.schedules.get(job_id)
        if row is None:
            raise JobNotFoundError(f"no scheduled job {job_id!r}")
        return row.status != status and self._set_schedule(job_id, status=status)

    def _set_schedule(self, job_id: str, **changes: Any) -> bool:
        row = self.schedules.get(job_id)
        if row is None:
            return False
        row = replace(row, **changes)
        self.schedules[job_id] = row
        self.emit(Upsert(row))
        return True

    def _set_job(self, job_id: str, **changes: Any) -> None:
        row = replace(self.jobs[job_id], **changes)
        self.jobs[job_id] = row
        self.emit(Upsert(row))
