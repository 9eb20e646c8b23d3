"""Workers: ``naq worker`` runs one; ``naq workers [list|stop NAME]`` lists or stops them,
also spelt ``naq list-workers`` and ``naq worker-stop NAME``."""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import JsonFlag, LogLevel, NatsUrl, WorkerName
from naq.cli.output import console, fmt_bytes, fmt_percent, to_json
from naq.cli.runner import fail, guarded, run, settings_for, setup_logging
from naq.cli.tables import Column, print_listing

workers_app = typer.Typer(help="Live workers: list (the default), stop.")
app.add_typer(workers_app, name="workers")

WORKER_COLUMNS = (
    Column("name", "id"),
    Column("status", "fixed", 90),
    Column("queues", "fixed", 80),
    Column("running", "fixed", 70, "right"),
    Column("processed", "fixed", 50, "right"),
    Column("failed", "fixed", 45, "right"),
    Column("heartbeat", "fixed", 60, "right"),
    Column("cpu", "fixed", 40, "right"),
    Column("rss", "fixed", 35, "right"),
    Column("host/pid", "text", 20),
)


@app.command()
@guarded
def worker(
    queues: Annotated[list[str], typer.Argument(help="Queues to take jobs from.")],
    nats_url: NatsUrl = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Jobs run at once.")] = 10,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Worker name.")] = None,
    log_level: LogLevel = None,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once the queues are empty.")] = False,
    module: Annotated[
        list[str] | None,
        typer.Option("--module", "-m", help="Module to import at start (e.g. one with @naq.task)."),
    ] = None,
    allowed_modules: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated module prefixes jobs may import \\[env NAQ_ALLOWED_MODULES]."
        ),
    ] = None,
    shutdown_grace: Annotated[
        float, typer.Option(help="Seconds running jobs get to finish on SIGTERM.")
    ] = 30.0,
) -> None:
    """Start a worker that runs jobs from QUEUES."""
    from naq.worker import Worker

    setup_logging(log_level, "INFO")
    # Like rq and celery: jobs' modules are found relative to where the worker starts.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    allowed = None
    if allowed_modules is not None:
        allowed = [m.strip() for m in allowed_modules.split(",") if m.strip()]
    w = Worker(
        queues,
        nats_url=nats_url,
        concurrency=concurrency,
        worker_name=name,
        burst=burst,
        module_paths=module or [],
        allowed_modules=allowed,
        shutdown_grace=shutdown_grace,
    )
    # This process is the worker's alone, and everything imported so far lives as long as
    # it does: keep the garbage collector from scanning it all again and again. Scanning
    # the interpreter's and libraries' objects took a quarter of a short job's cost.
    gc.freeze()
    run(w.run())


@app.command("list-workers")
@workers_app.command("list")
@workers_app.callback(invoke_without_command=True)
@guarded
def list_workers_command(
    ctx: typer.Context,
    nats_url: NatsUrl = None,
    log_level: LogLevel = None,
    json_output: JsonFlag = False,
) -> None:
    """List live workers with their status, jobs, heartbeat age, CPU % and memory."""
    from naq.monitor import list_workers

    if ctx.invoked_subcommand is not None:
        return  # ``naq workers stop ...``: the subcommand does the work
    setup_logging(log_level, "WARNING")
    workers = run(list_workers(settings=settings_for(nats_url)))
    if json_output:
        print(to_json([w.to_dict() for w in workers]))
        return
    if not workers:
        console.print("No live workers.")
        return
    rows = [
        [
            w.name,
            w.status,
            ", ".join(w.queues),
            f"{len(w.running)}/{w.concurrency}",
            str(w.processed),
            str(w.failed),
            f"{w.heartbeat_age:.0f}s ago",
            fmt_percent(w.cpu_percent),
            fmt_bytes(w.rss_bytes),
            f"{w.host}/{w.pid}",
        ]
        for w in workers
    ]
    print_listing(f"{len(workers)} worker(s)", WORKER_COLUMNS, rows)


@app.command("worker-stop")
@workers_app.command("stop")
@guarded
def worker_stop(name: WorkerName, nats_url: NatsUrl = None) -> None:
    """Ask a worker to stop gracefully (it finishes its running jobs)."""
    from naq.control import stop_worker
    from naq.id_prefix import resolve_worker_name

    settings = settings_for(nats_url)

    async def go() -> tuple[str, bool]:
        full_name = await resolve_worker_name(name, settings=settings)
        return full_name, await stop_worker(full_name, settings=settings)

    full_name, stopping = run(go())
    if not stopping:
        raise fail(f"no live worker named {name!r} answered")
    console.print(f"Worker {full_name} is stopping.")
