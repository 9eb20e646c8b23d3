"""The fake service's metrics: per-function figures, the Overview's series, job attempts.

Deterministic like the rest of :mod:`naq_tui.fake` (curves from sines, no randomness),
and made to tell a story at a glance: ``billing:charge_card`` fails more and more in the
last minutes, the paused ``reports`` queue's latency keeps climbing, the other queues
are fine.
"""

from __future__ import annotations

import math

from naq_tui.service import Attempt, FunctionRow, JobRow, QueueTrend, Series

#: The Overview's window and step (seconds): ten minutes, a value every ten seconds.
WINDOW = 600.0
STEP = 10.0
#: Buckets of each function's series.
BUCKETS = 30
#: Seconds between two attempts of a job (its retry backoff).
BACKOFF = 30.0


def _wave(i: int, period: float, phase: float = 0.0) -> float:
    return math.sin(2 * math.pi * i / period + phase)


def series(now: float, latency: dict[str, float]) -> Series:
    """Ten minutes of throughput, and each queue's depth and latency trend ending at
    ``latency`` (queue -> its latency now)."""
    steps = int(WINDOW / STEP)
    processed = tuple(
        round(15.0 + 4.0 * _wave(i, 40) + 1.5 * _wave(i, 7, 1.0), 2) for i in range(steps)
    )
    # Failures stay rare, then the payment gateway starts timing out.
    failed = tuple(
        round(0.1 + (0.12 * (i - 44) if i > 44 else 0.05 * (1 + _wave(i, 9))), 2)
        for i in range(steps)
    )
    queues = {
        "default": QueueTrend(
            pending=tuple(max(0, round(4 + 3 * _wave(i, 12))) for i in range(steps)),
            latency=tuple(
                round(max(0.0, latency["default"] + 1.5 * _wave(i, 10)), 1) for i in range(steps)
            ),
        ),
        "emails": QueueTrend(
            pending=tuple(max(0, round(2 + 2 * _wave(i, 8, 2.0))) for i in range(steps)),
            latency=tuple(
                round(max(0.0, latency["emails"] + 0.3 * _wave(i, 6)), 1) for i in range(steps)
            ),
        ),
        # Paused half-way through the window: from then on its oldest job only gets older.
        "reports": QueueTrend(
            pending=tuple(1 if i < 30 else 1 + (i - 30) // 14 for i in range(steps)),
            latency=tuple(
                round(max(0.0, latency["reports"] - (steps - 1 - i) * STEP), 1) if i >= 30 else 2.0
                for i in range(steps)
            ),
        ),
    }
    return Series(at=now, step=STEP, processed=processed, failed=failed, queues=queues)


def function_rows() -> list[FunctionRow]:
    """The Metrics pane: one row per (queue, function) over the last five minutes."""
    # (queue, function, processed, failed, retried, p50, p95, max, wait p50, wait p95, shape)
    spec: list[tuple[str, str, int, int, int, float, float, float, float, float, float]] = [
        ("emails", "myapp.tasks:send_email", 3840, 4, 21, 0.18, 0.92, 2.4, 0.05, 0.4, 0.0),
        ("default", "myapp.billing:charge_card", 412, 174, 205, 1.9, 30.0, 30.0, 0.3, 2.8, 1.0),
        ("default", "myapp.images:resize_image", 1020, 9, 12, 0.45, 1.8, 6.2, 0.2, 1.1, 2.0),
        ("default", "myapp.sync:sync_inventory", 96, 0, 2, 4.1, 9.8, 14.5, 0.6, 3.0, 3.0),
        ("reports", "myapp.reports:build_report", 20, 1, 0, 12.4, 29.0, 30.0, 1.0, 4.0, 4.0),
        ("default", "myapp.maintenance:cleanup_tmp", 5, 0, 0, 0.8, 1.1, 1.2, 0.0, 0.1, 5.0),
    ]
    rows = []
    for queue, function, processed, failed, retried, p50, p95, top, w50, w95, shape in spec:
        per_bucket = processed / BUCKETS
        if function.endswith("charge_card"):
            # Retries pile up as the gateway fails: more runs in the last buckets.
            trend = tuple(round(per_bucket * (0.5 + i / BUCKETS)) for i in range(BUCKETS))
        else:
            trend = tuple(
                max(0, round(per_bucket * (1 + 0.4 * _wave(i, 11, shape)))) for i in range(BUCKETS)
            )
        rows.append(
            FunctionRow(
                queue=queue,
                function=function,
                processed=processed,
                completed=processed - failed - retried,
                failed=failed,
                retried=retried,
                duration_p50=p50,
                duration_p95=p95,
                duration_max=top,
                wait_p50=w50,
                wait_p95=w95,
                series=trend,
            )
        )
    return rows


def attempts(job: JobRow) -> tuple[Attempt, ...]:
    """A job's attempts so far: the earlier ones failed, the last is how the job stands."""
    if not job.attempt or job.started_at is None:
        return ()
    took = job.duration if job.duration is not None else 0.0
    error_type, _, message = (job.error or "").partition(": ")
    made = []
    for number in range(1, job.attempt + 1):
        back = job.attempt - number
        start = job.started_at - back * (BACKOFF + took)
        last = number == job.attempt
        failed_here = not last or job.status in ("failed", "retry")
        made.append(
            Attempt(
                number=number,
                worker=job.worker if last else ("worker-bravo" if number % 2 else "worker-alpha"),
                started_at=start,
                ended_at=None if last and job.status == "running" else start + (took or 1.2),
                error_type=(error_type or "ConnectionError") if failed_here else None,
                error=(message or "connection reset by peer") if failed_here else None,
            )
        )
    return tuple(made)
