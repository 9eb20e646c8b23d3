"""Workers: ``naq worker`` runs one; ``naq workers [list|stop NAME]`` lists or stops them,
also spelt ``naq list-workers`` and ``naq worker-stop NAME``."""

from __future__ import annotations

import gc
import os
import socket
import sys
from typing import Annotated, Any

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
    ctx: typer.Context,
    queues: Annotated[
        list[str] | None,
        typer.Argument(help="Queues to take jobs from, first first (or from --app)."),
    ] = None,
    nats_url: NatsUrl = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Jobs run at once \\[default: 10].")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Worker name.")] = None,
    log_level: LogLevel = None,
    burst: Annotated[
        bool | None, typer.Option("--burst", help="Exit once the queues are empty.")
    ] = None,
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
        float | None,
        typer.Option(help="Seconds running jobs get to finish on SIGTERM \\[default: 30]."),
    ] = None,
    app_path: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="A naq.Worker (or worker settings) defined in code, as pkg.module:name; "
            "the flags given beside it override it.",
        ),
    ] = None,
    lifespan: Annotated[
        str | None,
        typer.Option(
            help="pkg.module:fn; fn(worker) returns an async context manager entered once "
            "before the first job; what it yields is naq.worker_state()."
        ),
    ] = None,
    middleware: Annotated[
        list[str] | None,
        typer.Option(
            help="pkg.module:Name of a middleware (a class is instantiated); repeatable, "
            "run in the given order."
        ),
    ] = None,
    max_jobs: Annotated[
        int | None,
        typer.Option(help="Stop gracefully after starting this many jobs (a pool replaces it)."),
    ] = None,
    max_memory: Annotated[
        float | None,
        typer.Option(help="Stop gracefully once memory (RSS) passes this many MB."),
    ] = None,
    fair: Annotated[
        bool | None,
        typer.Option(
            "--fair",
            help="Share the slots among the queues in turn, instead of taking them strictly "
            "in the order given.",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            "-P",
            help="Worker processes to run under a supervisor (replaced if they die), named "
            "NAME-1 to NAME-N; with --burst the pool ends once all have ended.",
        ),
    ] = None,
) -> None:
    """Start a worker that runs jobs from QUEUES (or a pool of them: --processes)."""
    from naq.cli.worker_app import app_worker, import_object, middleware_from
    from naq.worker import Worker
    from naq.worker.pool import validate_processes, watch_supervisor

    setup_logging(log_level, "INFO")
    # Like rq and celery: jobs' modules are found relative to where the worker starts.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    pool_name = name or f"{socket.gethostname()}-{os.getpid()}"
    if processes is not None:
        validate_processes(processes)
        # A pool's children get these options: checked here once, as the first child's.
        name = f"{pool_name}-1"
    given: dict[str, Any] = {
        "queues": queues or None,
        "nats_url": nats_url,
        "concurrency": concurrency,
        "worker_name": name,
        "burst": burst,
        "module_paths": module or None,
        "shutdown_grace": shutdown_grace,
        "max_jobs": max_jobs,
        "max_memory": max_memory,
        "fair": fair,
    }
    if allowed_modules is not None:
        given["allowed_modules"] = [m.strip() for m in allowed_modules.split(",") if m.strip()]
    if lifespan is not None:
        given["lifespan"] = import_object(lifespan, "--lifespan")
    if middleware:
        given["middleware"] = [middleware_from(path) for path in middleware]
    overrides = {option: value for option, value in given.items() if value is not None}
    if app_path is not None:
        w = app_worker(app_path, overrides)
    elif not queues:
        raise fail("give the QUEUES to take jobs from (or --app pkg.module:worker)", code=2)
    else:
        w = Worker(**overrides)
    if processes is not None:
        from naq.cli.pool_args import pool_child_argv
        from naq.worker.pool import run_pool

        code = run_pool(
            pool_child_argv(ctx),
            processes=processes,
            name=pool_name,
            shutdown_grace=w.shutdown_grace,
            settings=w.settings,
            burst=w.burst,
        )
        raise typer.Exit(code)
    watch_supervisor(w)
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
            w.queue_order(),
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
        # The exact name first: a pool's supervisor answers to its own name, which is the
        # start of its children's names, and is no live worker to resolve a prefix among.
        if await stop_worker(name, settings=settings):
            return name, True
        full_name = await resolve_worker_name(name, settings=settings)
        if full_name == name:
            return name, False
        return full_name, await stop_worker(full_name, settings=settings)

    full_name, stopping = run(go())
    if not stopping:
        raise fail(f"no live worker named {name!r} answered")
    console.print(f"Worker {full_name} is stopping.")
