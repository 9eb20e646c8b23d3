"""``naq demo``: an embedded nats-server, a worker, a scheduler and a stream of
realistic sample jobs, shown in the TUI (or, with ``--no-tui``, as a console log).

Everything runs in one process and stops together: the server is a child
process stopped on exit, the worker, scheduler and generator are asyncio
tasks. The sample functions live here, at module level, so the worker imports
them like any user's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from naq.context import report_progress
from naq.jobs import watch_jobs
from naq.queue import Queue
from naq.scheduler import Scheduler
from naq.server import EmbeddedServer
from naq.settings import Settings, get_settings
from naq.transport import close_connections
from naq.worker import Worker

DEMO_QUEUES = ("default", "emails", "reports")


def send_email(to: str, subject: str) -> str:
    """Pretend to send an email."""
    time.sleep(random.uniform(0.02, 0.2))
    return f"sent {subject!r} to {to}"


async def resize_image(name: str, width: int) -> dict[str, object]:
    """Pretend to resize an image."""
    await asyncio.sleep(random.uniform(0.05, 0.3))
    return {"image": name, "width": width}


def charge_card(order: int) -> str:
    """Fail about half of the time, so retries show."""
    if random.random() < 0.5:
        raise ConnectionError(f"payment gateway timed out for order {order}")
    return f"order {order} paid"


def build_report(report: str) -> None:
    """Always fail, so dead letters show."""
    raise ValueError(f"report {report!r} has no data for this quarter")


async def export_rows(rows: int) -> int:
    """A long job that reports its progress."""
    steps = 10
    for step in range(steps):
        await asyncio.sleep(rows / 1000 / steps)
        await report_progress((step + 1) / steps, f"{(step + 1) * rows // steps} rows", rows=rows)
    return rows


def fetch_orders(day: int) -> list[int]:
    """First step of a dependency chain."""
    time.sleep(0.3)
    return [day * 100 + i for i in range(3)]


def total_orders(day: int) -> int:
    """Second step of a dependency chain."""
    time.sleep(0.2)
    return day * 3


def email_summary(day: int) -> str:
    """Last step of a dependency chain."""
    return f"summary of day {day} sent"


def cleanup_temp_files() -> int:
    """A recurring housekeeping job (cron)."""
    return random.randint(0, 40)


async def poll_inventory() -> str:
    """A recurring job (interval)."""
    await asyncio.sleep(0.1)
    return "inventory in sync"


async def setup_schedules(queues: dict[str, Queue]) -> None:
    """The demo's recurring jobs."""
    await queues["default"].schedule(cleanup_temp_files, cron="* * * * *")
    await queues["default"].schedule(poll_inventory, interval=15)
    await queues["reports"].schedule(email_summary, 0, cron="0 9 * * 1-5", timezone="Europe/Paris")


async def generate(queues: dict[str, Queue], stop: asyncio.Event) -> None:
    """Enqueue a realistic mix of jobs until ``stop`` is set."""
    n = 0
    while not stop.is_set():
        n += 1
        choice = random.random()
        if choice < 0.35:
            await queues["emails"].enqueue(
                send_email, f"user{n}@example.com", "Welcome", meta={"campaign": "onboarding"}
            )
        elif choice < 0.6:
            await queues["default"].enqueue(resize_image, f"photo{n}.jpg", 640)
        elif choice < 0.78:
            await queues["default"].enqueue(
                charge_card, n, max_retries=3, retry_delay=1, retry_strategy="exponential"
            )
        elif choice < 0.86:
            await queues["reports"].enqueue(build_report, f"Q{n % 4 + 1}")
        elif choice < 0.94:
            await queues["reports"].enqueue(export_rows, random.randint(3000, 9000))
        else:
            first = await queues["reports"].enqueue(fetch_orders, n)
            second = await queues["reports"].enqueue(total_orders, n, depends_on=first)
            await queues["emails"].enqueue(email_summary, n, depends_on=second)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(0.2, 0.8))


@contextlib.asynccontextmanager
async def demo_stack(settings: Settings | None = None) -> AsyncIterator[Settings]:
    """Run server, worker, scheduler and generator; yield the settings to reach them."""
    with EmbeddedServer() as server:
        settings = (settings or get_settings()).replace(nats_url=server.url)
        queues = {name: Queue(name, settings=settings) for name in DEMO_QUEUES}
        worker = Worker(
            list(DEMO_QUEUES),
            concurrency=8,
            settings=settings,
            install_signal_handlers=False,
            heartbeat_interval=2,
            shutdown_grace=0.5,
        )
        scheduler = Scheduler(settings=settings, install_signal_handlers=False)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker.run()), asyncio.create_task(scheduler.run())]
        await setup_schedules(queues)
        tasks.append(asyncio.create_task(generate(queues, stop)))
        try:
            yield settings
        finally:
            stop.set()
            worker.request_stop()
            scheduler.request_stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            # While the server still runs: what they hold is flushed to it, not waited on.
            await close_connections()


async def run_demo(
    duration: float | None = None,
    show: Callable[[Settings], Awaitable[Any]] | None = None,
) -> Counter[str]:
    """Run the demo until ``show(settings)`` returns (the TUI) or for ``duration``
    seconds, printing outcomes; returns the outcome counts seen."""
    counts: Counter[str] = Counter()
    async with demo_stack() as settings:
        if show is not None:
            await show(settings)
            return counts
        print(f"naq demo: nats-server at {settings.nats_url}; Ctrl-C stops everything")

        async def log_outcomes() -> None:
            async for event in watch_jobs(settings=settings):
                if event.status in ("completed", "failed", "retry", "cancelled"):
                    counts[event.status] += 1
                    detail = f" ({event.error})" if event.error else ""
                    print(f"{event.status:>9}  {event.function}{detail}")

        watcher = asyncio.create_task(log_outcomes())
        try:
            await asyncio.wait_for(asyncio.Event().wait(), duration)
        except asyncio.TimeoutError:
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
    return counts
