"""When the TUI calls something a problem: a stuck queue, a failing function, idle workers.

Pure functions over the rows, shared by the Overview and the tables, so a queue is
"stuck" by the same rule wherever it is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from naq_tui.service import FunctionRow, QueueRow, WorkerRow

#: Latency (seconds the oldest pending job has waited) from which a queue is slow ...
LATENCY_SLOW = 10.0
#: ... and from which it is stuck.
LATENCY_STUCK = 60.0
#: Share of a function's ended attempts failing for good from which it is failing.
FAILING_RATE = 0.10
#: Samples of a latency trend that must rise, one after the other, for it to be climbing.
CLIMB_SAMPLES = 4

#: level -> style of its figures.
LEVEL_STYLES = {"ok": "green", "slow": "yellow", "stuck": "bold red"}


def latency_level(latency: float) -> str:
    """``ok``, ``slow`` or ``stuck``."""
    if latency >= LATENCY_STUCK:
        return "stuck"
    if latency >= LATENCY_SLOW:
        return "slow"
    return "ok"


def climbing(latency: Sequence[float]) -> bool:
    """Whether the latency rose over each of the last few samples (jobs wait longer and longer)."""
    recent = latency[-CLIMB_SAMPLES:]
    if len(recent) < CLIMB_SAMPLES:
        return False
    return all(a < b for a, b in zip(recent[:-1], recent[1:], strict=True))


def failure_style(row: FunctionRow) -> str:
    """The style of a function's failure figures: red when failing, yellow when some fail."""
    if row.failed and row.failure_rate >= FAILING_RATE:
        return "bold red"
    return "yellow" if row.failed else ""


def failing(rows: Iterable[FunctionRow]) -> list[FunctionRow]:
    """The functions failing at or above :data:`FAILING_RATE`, worst first."""
    bad = [row for row in rows if row.failed and row.failure_rate >= FAILING_RATE]
    return sorted(bad, key=lambda row: (-row.failure_rate, -row.failed, row.key))


def serving(queue: QueueRow, workers: Iterable[WorkerRow]) -> int:
    """How many live workers take ``queue``'s jobs."""
    return sum(1 for worker in workers if queue.name in worker.queues)


def unserved(queue: QueueRow, workers: Iterable[WorkerRow]) -> bool:
    """Jobs wait in an active queue that no worker takes."""
    return queue.pending > 0 and not queue.paused and serving(queue, workers) == 0


def idle_while_waiting(worker: WorkerRow, queues: dict[str, QueueRow]) -> bool:
    """An idle worker whose queues have jobs waiting (it should be taking them)."""
    if worker.status != "idle" or worker.running:
        return False
    return any(
        (row := queues.get(name)) is not None and row.pending > 0 and not row.paused
        for name in worker.queues
    )
