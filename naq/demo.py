"""``naq demo``: an embedded nats-server, a worker and a stream of sample jobs.

Everything runs in one process and stops together: the server is a child
process killed on exit, the worker an asyncio task. The sample functions live
here, at module level, so the worker imports them like any user's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from naq.broker import Broker, decode_or_none
from naq.job import Job
from naq.models import result_decoder
from naq.queue import Queue
from naq.server import EmbeddedServer
from naq.settings import Settings, get_settings
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


def flaky_payment(order: int) -> str:
    """Fail about half of the time, so retries show."""
    if random.random() < 0.5:
        raise ConnectionError(f"payment gateway timed out for order {order}")
    return f"order {order} paid"


def broken_report(report: str) -> None:
    """Always fail, so dead letters show."""
    raise ValueError(f"report {report!r} has no data")


async def long_export(rows: int) -> int:
    """A long job."""
    await asyncio.sleep(rows / 1000)
    return rows


async def _generate(queues: dict[str, Queue], pending: dict[str, Job], stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        choice = random.random()
        if choice < 0.35:
            job = await queues["emails"].enqueue(
                send_email, f"user{n}@example.com", "Welcome", meta={"campaign": "onboarding"}
            )
        elif choice < 0.6:
            job = await queues["default"].enqueue(resize_image, f"photo{n}.jpg", 640)
        elif choice < 0.8:
            job = await queues["default"].enqueue(
                flaky_payment, n, max_retries=3, retry_delay=0.5, retry_strategy="exponential"
            )
        elif choice < 0.9:
            job = await queues["reports"].enqueue(broken_report, f"q{n % 4 + 1}")
        else:
            job = await queues["reports"].enqueue(long_export, random.randint(2000, 5000))
        pending[job.job_id] = job
        await asyncio.sleep(random.uniform(0.1, 0.4))


def _table(counts: Counter[str], recent: list[tuple[str, str, str]], elapsed: float) -> Table:
    table = Table(title=f"naq demo - {elapsed:.0f}s - Ctrl-C to stop", expand=False)
    table.add_column("job")
    table.add_column("function")
    table.add_column("outcome")
    for job_id, function, outcome in recent[-12:]:
        table.add_row(job_id[:12], function, outcome)
    table.caption = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    return table


async def run_demo(duration: float | None = None, settings: Settings | None = None) -> Counter[str]:
    """Run the demo for ``duration`` seconds (None: until Ctrl-C); returns outcome counts."""
    console = Console()
    counts: Counter[str] = Counter()
    with EmbeddedServer() as server:
        settings = (settings or get_settings()).replace(nats_url=server.url)
        console.print(
            f"nats-server with JetStream at [bold]{server.url}[/] (store {server.data_dir})"
        )
        queues = {name: Queue(name, settings=settings) for name in DEMO_QUEUES}
        worker = Worker(
            list(DEMO_QUEUES), concurrency=8, settings=settings, install_signal_handlers=False
        )
        worker_task = asyncio.create_task(worker.run())
        stop = asyncio.Event()
        pending: dict[str, Job] = {}
        recent: list[tuple[str, str, str]] = []
        generator = asyncio.create_task(_generate(queues, pending, stop))
        broker = await Broker.connect(settings)
        # One watch over every result: outcomes show the moment they are stored.
        watcher = await (await broker.results_kv()).watchall()
        started = time.monotonic()
        try:
            with Live(_table(counts, recent, 0), console=console, refresh_per_second=4) as live:
                while duration is None or time.monotonic() - started < duration:
                    try:
                        entry = await watcher.updates(timeout=0.25)
                    except asyncio.TimeoutError:
                        entry = None
                    record = decode_or_none(result_decoder, entry.value) if entry else None
                    if record is not None:
                        job = pending.pop(record.job_id, None)
                        function = job.function_ref.split(":")[-1] if job else "?"
                        counts[record.status] += 1
                        if record.status == "completed":
                            outcome = f"[green]completed[/] {escape(repr(record.result)[:50])}"
                        else:
                            outcome = f"[red]{record.status}[/] {escape((record.error or '')[:50])}"
                        recent.append((record.job_id, function, outcome))
                    counts["pending"] = len(pending)
                    live.update(_table(counts, recent, time.monotonic() - started))
        finally:
            stop.set()
            generator.cancel()
            with contextlib.suppress(Exception):
                await watcher.stop()
            worker.request_stop()
            worker.shutdown_grace = 2.0
            await asyncio.gather(generator, worker_task, return_exceptions=True)
    return counts
