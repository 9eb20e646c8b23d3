"""The ``naq`` command line: thin shells over the library, rich tables, ``--json``
for scripts, and one clear line (never a traceback) when something is wrong."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from naq.errors import NaqException
from naq.log_level import choose_level, configure_logging
from naq.settings import get_settings

T = TypeVar("T")

app = typer.Typer(
    name="naq",
    help="naq: a job queue on NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
job_app = typer.Typer(help="One job: show, result, wait, cancel.", no_args_is_help=True)
app.add_typer(job_app, name="job")

console = Console()
err_console = Console(stderr=True)

NatsUrl = Annotated[
    str | None,
    typer.Option(
        "--nats-url", "-u", help="NATS server URL(s), comma separated [env NAQ_NATS_URL]."
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", "-l", help="Logging level, DEBUG to CRITICAL [env NAQ_LOG_LEVEL]."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class CliError(Exception):
    """A failure to report as one line and a non-zero exit."""


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the one error line and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


async def _then_close(coro: Coroutine[Any, Any, T]) -> T:
    # Closed before the event loop is: on Python 3.10 a TLS connection still open when the
    # loop closes logs a traceback from its transport.
    from naq.transport import close_connections

    try:
        return await coro
    finally:
        await close_connections()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine (closing its connections), turning naq errors into one line."""
    try:
        return asyncio.run(_then_close(coro))
    except NaqException as exc:
        raise fail(str(exc)) from None
    except CliError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def setup_logging(flag: str | None, default: str, handler: logging.Handler | None = None) -> None:
    """Log at the level of ``--log-level``, else ``NAQ_LOG_LEVEL``, else ``default``."""
    try:
        level = choose_level(flag, get_settings().log_level, default)
    except NaqException as exc:
        raise fail(str(exc)) from None
    configure_logging(level, handler)


def setup_tui_logging() -> None:
    """Log to the TUI's own log (``textual console``): records would scribble over the screen.

    Unless ``NAQ_LOG_LEVEL`` says otherwise, only critical records.
    """
    from textual.logging import TextualHandler

    setup_logging(None, "CRITICAL", TextualHandler())


@app.callback()
def _every_command() -> None:
    # Every command logs at NAQ_LOG_LEVEL, those without a --log-level flag included;
    # a command with one sets its level again.
    setup_logging(None, "WARNING")


def to_json(value: Any) -> str:
    """JSON text of ``value`` (dataclasses and unknown types as their str)."""
    import msgspec

    return msgspec.json.encode(value, enc_hook=str).decode()


def fmt_time(ts: float | None) -> str:
    """A UNIX time as local ISO text, or '-'."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def settings_for(nats_url: str | None) -> Any:
    """Settings from the environment with ``--nats-url`` applied."""
    try:
        return get_settings().replace(nats_url=nats_url)
    except NaqException as exc:
        raise fail(str(exc)) from None


def guarded(func: Callable[..., T]) -> Callable[..., T]:
    """Turn naq errors raised outside ``run`` (e.g. while building objects) into one line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except NaqException as exc:
            raise fail(str(exc)) from None

    return wrapper


# -- worker -----------------------------------------------------------------


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
            help="Comma-separated module prefixes jobs may import [env NAQ_ALLOWED_MODULES]."
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


# -- queues -------------------------------------------------------------------


@app.command()
@guarded
def purge(
    queues: Annotated[list[str], typer.Argument(help="Queues to empty.")],
    nats_url: NatsUrl = None,
    log_level: LogLevel = None,
    json_output: JsonFlag = False,
) -> None:
    """Remove every pending job from QUEUES."""
    from naq.queue import Queue

    setup_logging(log_level, "WARNING")
    targets = [Queue(q, nats_url=nats_url) for q in queues]

    async def go() -> dict[str, int]:
        return {q.name: await q.purge() for q in targets}

    counts = run(go())
    if json_output:
        print(to_json(counts))
        return
    for queue, count in counts.items():
        console.print(f"Purged {count} job(s) from queue [bold]{queue}[/].")


@app.command("enqueue")
@guarded
def enqueue_command(
    function: Annotated[str, typer.Argument(help="Function to run, as module:function.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Arguments, each parsed as JSON (else taken as a string); a single JSON "
            "array is the whole argument list."
        ),
    ] = None,
    kwargs: Annotated[
        str | None, typer.Option("--kwargs", help="Keyword arguments as a JSON object.")
    ] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Queue name.")] = None,
    nats_url: NatsUrl = None,
    max_retries: Annotated[int, typer.Option(help="Retries after a failure.")] = 0,
    retry_delay: Annotated[float, typer.Option(help="Seconds between retries.")] = 0.0,
    timeout: Annotated[float | None, typer.Option(help="Seconds the job may run.")] = None,
    job_id: Annotated[str | None, typer.Option(help="Caller-chosen job id (idempotent).")] = None,
    wait: Annotated[
        float | None, typer.Option(help="Wait up to this many seconds and print the result.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Enqueue FUNCTION with ARGS; prints the job id."""
    from naq.queue import Queue

    if ":" not in function:
        raise fail(f"function {function!r} must be given as module:function")
    call_args = parse_args(args or [])
    call_kwargs: dict[str, Any] = {}
    if kwargs:
        try:
            call_kwargs = json.loads(kwargs)
        except json.JSONDecodeError as exc:
            raise fail(f"--kwargs {kwargs!r} is not JSON: {exc}") from None
        if not isinstance(call_kwargs, dict):
            raise fail(f"--kwargs {kwargs!r} must be a JSON object")
    options: dict[str, Any] = {"max_retries": max_retries, "retry_delay": retry_delay}
    if timeout is not None:
        options["timeout"] = timeout
    if job_id is not None:
        options["job_id"] = job_id
    q = Queue(queue, nats_url=nats_url)

    async def go() -> tuple[Any, Any]:
        job = await q.enqueue_call(function, call_args, call_kwargs, **options)
        outcome = None
        if wait is not None:
            from naq.jobs import wait_for_job

            outcome = await wait_for_job(job.job_id, wait, settings=q.settings)
        return job, outcome

    job, outcome = run(go())
    if outcome is None:
        print(
            to_json({"job_id": job.job_id, "queue": job.queue_name}) if json_output else job.job_id
        )
        return
    print_job(outcome, json_output)
    if outcome.status != "completed":
        raise typer.Exit(1)


def parse_args(tokens: list[str]) -> list[Any]:
    """CLI argument tokens to values: JSON where it parses, else the string itself."""
    values: list[Any] = []
    for token in tokens:
        try:
            values.append(json.loads(token))
        except json.JSONDecodeError:
            values.append(token)
    if len(tokens) == 1 and tokens[0].lstrip().startswith("[") and isinstance(values[0], list):
        return values[0]
    return values


# -- workers ---------------------------------------------------------------------


@app.command("list-workers")
@guarded
def list_workers_command(
    nats_url: NatsUrl = None, log_level: LogLevel = None, json_output: JsonFlag = False
) -> None:
    """List live workers with their status, jobs and heartbeat age."""
    from naq.monitor import list_workers

    setup_logging(log_level, "WARNING")
    workers = run(list_workers(settings=settings_for(nats_url)))
    if json_output:
        print(to_json([w.to_dict() for w in workers]))
        return
    if not workers:
        console.print("No live workers.")
        return
    table = Table(title=f"{len(workers)} worker(s)")
    for column in (
        "name",
        "status",
        "queues",
        "running",
        "processed",
        "failed",
        "heartbeat",
        "host/pid",
    ):
        table.add_column(column)
    for w in workers:
        table.add_row(
            w.name,
            w.status,
            ", ".join(w.queues),
            f"{len(w.running)}/{w.concurrency}",
            str(w.processed),
            str(w.failed),
            f"{w.heartbeat_age:.0f}s ago",
            f"{w.host}/{w.pid}",
        )
    console.print(table)


# -- jobs ------------------------------------------------------------------------------


def print_job(info: Any, json_output: bool) -> None:
    """Print a JobInfo as a panel of fields or as JSON."""
    if json_output:
        data = dict(info.__dict__)
        data["duration"] = info.duration
        print(to_json(data))
        return
    table = Table(show_header=False, box=None, title=f"job {info.job_id}")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("status", info.status),
        ("queue", info.queue or "-"),
        ("function", info.function or "-"),
        ("args", to_json(info.args)),
        ("kwargs", to_json(info.kwargs)),
        ("attempt", f"{info.attempt} of {info.max_retries + 1}"),
        ("worker", info.worker or "-"),
        ("enqueued", fmt_time(info.enqueued_at)),
        ("started", fmt_time(info.started_at)),
        ("ended", fmt_time(info.ended_at)),
    ]
    if info.next_retry_at:
        rows.append(("next retry", fmt_time(info.next_retry_at)))
    if info.meta:
        rows.append(("meta", to_json(info.meta)))
    if info.status == "completed":
        rows.append(("result", to_json(info.result)))
    if info.error:
        rows.append(("error", info.error))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table, highlight=False)
    if info.traceback:
        console.print(info.traceback, highlight=False, markup=False)


@job_app.command("show")
@guarded
def job_show(job_id: str, nats_url: NatsUrl = None, json_output: JsonFlag = False) -> None:
    """Show a job's status, attempts, timings and outcome."""
    from naq.jobs import get_job

    info = run(get_job(job_id, settings=settings_for(nats_url)))
    print_job(info, json_output)


@job_app.command("result")
@guarded
def job_result(job_id: str, nats_url: NatsUrl = None, json_output: JsonFlag = False) -> None:
    """Print a finished job's return value as JSON (exit 1 if it failed, was cancelled or
    has not finished)."""
    from naq.errors import JobCancelledError, JobExecutionError
    from naq.jobs import fetch_job_result

    try:
        value = asyncio.run(fetch_job_result(job_id, settings=settings_for(nats_url)))
    except JobExecutionError as exc:
        status = "cancelled" if isinstance(exc, JobCancelledError) else "failed"
        if json_output:
            print(to_json({"job_id": job_id, "status": status, "error": exc.error}))
            raise typer.Exit(1) from None
        raise fail(f"job {job_id} {status}: {exc.error}") from None
    except NaqException as exc:
        raise fail(str(exc)) from None
    print(to_json({"job_id": job_id, "result": value}) if json_output else to_json(value))


@job_app.command("wait")
@guarded
def job_wait(
    job_id: str,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Wait until a job ends, then show it (exit 1 unless it completed)."""
    from naq.jobs import wait_for_job

    info = run(wait_for_job(job_id, timeout, settings=settings_for(nats_url)))
    print_job(info, json_output)
    if info.status != "completed":
        raise typer.Exit(1)


# -- server ------------------------------------------------------------------------------


@app.command()
def server(
    port: Annotated[int, typer.Option("--port", "-p", help="Client port.")] = 4222,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        str, typer.Option("--data-dir", "-d", help="JetStream store directory.")
    ] = ".naq-data",
) -> None:
    """Run the bundled nats-server (JetStream on) in the foreground; Ctrl-C stops it."""
    from naq.server import run_foreground

    try:
        code = run_foreground(host, port, data_dir)
    except NaqException as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (with --no-tui).")
    ] = None,
    no_tui: Annotated[
        bool, typer.Option("--no-tui", help="Print outcomes instead of opening the TUI.")
    ] = False,
) -> None:
    """Run an embedded nats-server, a worker, a scheduler and sample jobs, in the TUI."""
    from naq.demo import run_demo

    if no_tui:
        counts = run(run_demo(duration))
        console.print("demo stopped: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return
    setup_tui_logging()

    async def show(settings: Any) -> None:
        from naq_tui.app import NaqApp
        from naq_tui.live import LiveService

        await NaqApp(LiveService(settings)).run_async()

    run(run_demo(show=show))


@app.command()
@guarded
def tui(
    nats_url: NatsUrl = None,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Show only: hide and refuse every action.")
    ] = False,
) -> None:
    """Open the terminal UI: live queues, workers, schedules, jobs and dead letters."""
    from naq_tui.app import NaqApp
    from naq_tui.live import LiveService

    setup_tui_logging()
    NaqApp(LiveService(settings_for(nats_url)), readonly=readonly).run()


@app.command()
@guarded
def dashboard(
    host: Annotated[str, typer.Option("--host", "-h", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on.")] = 8080,
    nats_url: NatsUrl = None,
    readonly: Annotated[bool, typer.Option("--readonly", help="Hide and refuse actions.")] = False,
    log_level: LogLevel = None,
) -> None:
    """Serve the TUI in a web browser (textual-serve)."""
    import shlex

    from textual_serve.server import Server

    setup_logging(log_level, "INFO")
    command = [sys.executable, "-m", "naq", "tui"]
    url = settings_for(nats_url).nats_url
    command += ["--nats-url", url]
    if readonly:
        command.append("--readonly")
    console.print(f"naq dashboard on http://{host}:{port} (NATS at {url}); Ctrl-C stops it")
    Server(shlex.join(command), host=host, port=port, title="naq").serve()


# -- scheduling ---------------------------------------------------------------------


@app.command()
@guarded
def scheduler(
    nats_url: NatsUrl = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", "-p", help="Longest sleep between checks (s).")
    ] = 1.0,
    instance_id: Annotated[
        str | None, typer.Option("--instance-id", "-i", help="Name of this scheduler instance.")
    ] = None,
    disable_ha: Annotated[
        bool, typer.Option("--disable-ha", help="Don't elect a leader (run only one scheduler).")
    ] = False,
    module: Annotated[
        list[str] | None,
        typer.Option("--module", "-m", help="Module to import (e.g. next-interval functions)."),
    ] = None,
    log_level: LogLevel = None,
) -> None:
    """Start a scheduler that enqueues delayed and recurring jobs when due."""
    from naq.scheduler import Scheduler

    setup_logging(log_level, "INFO")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    s = Scheduler(
        nats_url=nats_url,
        poll_interval=poll_interval,
        instance_id=instance_id,
        enable_ha=not disable_ha,
        module_paths=module or [],
    )
    run(s.run())


def describe_schedule(info: Any) -> str:
    """How a schedule repeats, in a few words."""
    if info.cron:
        return f"cron {info.cron}" + (f" ({info.timezone})" if info.timezone else "")
    if info.interval:
        return f"every {info.interval:g}s"
    if info.next_interval:
        return f"next_interval {info.next_interval}"
    return "once"


@app.command("list-scheduled")
@guarded
def list_scheduled(
    nats_url: NatsUrl = None,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="active, paused or failed.")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", "-j", help="Only this job.")] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", "-q", help="Only this queue (default: all).")
    ] = None,
    detailed: Annotated[bool, typer.Option("--detailed", "-d", help="More columns.")] = False,
    log_level: LogLevel = None,
    json_output: JsonFlag = False,
) -> None:
    """List scheduled jobs with their status and next run time."""
    from naq.schedules import list_scheduled_jobs

    setup_logging(log_level, "WARNING")
    infos = run(
        list_scheduled_jobs(
            status=status, queue=queue, job_id=job_id, settings=settings_for(nats_url)
        )
    )
    if json_output:
        print(to_json([i.to_dict() for i in infos]))
        return
    if not infos:
        console.print("No scheduled jobs.")
        return
    table = Table(title=f"{len(infos)} scheduled job(s)")
    columns = ["job id", "queue", "function", "schedule", "next run", "status", "runs"]
    if detailed:
        columns += ["repeat", "failures", "last run", "args", "last error"]
    for column in columns:
        # Ids are for copying: fold them rather than cut them.
        table.add_column(column, overflow="fold" if column == "job id" else "ellipsis")
    for info in infos:
        row = [
            info.job_id,
            info.queue,
            info.function,
            describe_schedule(info),
            fmt_time(info.next_run),
            info.status,
            str(info.runs),
        ]
        if detailed:
            row += [
                "forever" if info.repeat is None else str(info.repeat),
                str(info.failures),
                fmt_time(info.last_run),
                to_json(info.args),
                info.last_error or "-",
            ]
        table.add_row(*row)
    console.print(table, highlight=False)


@app.command("job-control")
@guarded
def job_control(
    job_id: Annotated[str, typer.Argument(help="The scheduled job's id.")],
    action: Annotated[str, typer.Argument(help="cancel, pause, resume or reschedule.")],
    nats_url: NatsUrl = None,
    cron: Annotated[str | None, typer.Option(help="New cron expression (reschedule).")] = None,
    interval: Annotated[
        float | None, typer.Option(help="New interval in seconds (reschedule).")
    ] = None,
    repeat: Annotated[
        int | None, typer.Option(help="New total number of runs (reschedule).")
    ] = None,
    next_run: Annotated[
        str | None, typer.Option(help="Next run, ISO time like 2030-01-01T12:00:00Z (reschedule).")
    ] = None,
    log_level: LogLevel = None,
) -> None:
    """Cancel, pause, resume or reschedule a scheduled job."""
    from naq.queue import Queue

    setup_logging(log_level, "INFO")
    actions = ("cancel", "pause", "resume", "reschedule")
    if action not in actions:
        raise fail(f"unknown action {action!r}; use one of {', '.join(actions)}")
    updates: dict[str, Any] = {}
    if action == "reschedule":
        if cron is not None:
            updates["cron"] = cron
        if interval is not None:
            updates["interval"] = interval
        if repeat is not None:
            updates["repeat"] = repeat
        if next_run is not None:
            updates["scheduled_timestamp_utc"] = parse_iso(next_run)
        if not updates:
            raise fail("reschedule needs --cron, --interval, --repeat or --next-run")
    q = Queue(nats_url=nats_url)

    async def go() -> bool:
        if action == "cancel":
            return await q.cancel_scheduled_job(job_id)
        if action == "pause":
            return await q.pause_scheduled_job(job_id)
        if action == "resume":
            return await q.resume_scheduled_job(job_id)
        return await q.modify_scheduled_job(job_id, **updates)

    # An unknown id raises (one line, from run); False means it was in that state already.
    if not run(go()):
        state = "paused" if action == "pause" else "active"
        raise fail(f"scheduled job {job_id!r} is {state} already; nothing to {action}")
    done = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}
    console.print(f"Scheduled job {job_id} {done.get(action, 'rescheduled')}.")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time (``Z`` accepted; naive means UTC).

    Raises:
        typer.Exit: after printing one line naming the bad text.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise fail(f"invalid ISO time {text!r} (use e.g. 2030-01-01T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- queues and dead letters -----------------------------------------------------------

queue_app = typer.Typer(help="Pause or resume a queue.", no_args_is_help=True)
failed_app = typer.Typer(help="Dead letters: list, requeue, delete.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(failed_app, name="failed")


@app.command("queues")
@guarded
def queues_command(
    names: Annotated[list[str] | None, typer.Argument(help="Queues (default: all known).")] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Show pending, running, scheduled, completed and failed jobs per queue."""
    from naq.monitor import all_queue_stats

    stats = run(all_queue_stats(names or None, settings=settings_for(nats_url)))
    if json_output:
        print(to_json([s.to_dict() for s in stats]))
        return
    if not stats:
        console.print("No queues yet.")
        return
    table = Table(title=f"{len(stats)} queue(s)")
    for column in ("queue", "pending", "running", "scheduled", "completed", "failed", "state"):
        table.add_column(column, justify="left" if column in ("queue", "state") else "right")
    for s in stats:
        table.add_row(
            s.name,
            str(s.pending),
            str(s.running),
            str(s.scheduled),
            str(s.completed),
            str(s.failed),
            "[yellow]paused[/]" if s.paused else "active",
        )
    console.print(table)


@queue_app.command("pause")
@guarded
def queue_pause(queue: str, nats_url: NatsUrl = None) -> None:
    """Stop workers taking QUEUE's jobs (enqueueing goes on)."""
    from naq.queue import Queue

    run(Queue(queue, nats_url=nats_url).pause())
    console.print(f"Queue [bold]{queue}[/] paused.")


@queue_app.command("resume")
@guarded
def queue_resume(queue: str, nats_url: NatsUrl = None) -> None:
    """Let workers take QUEUE's jobs again."""
    from naq.queue import Queue

    run(Queue(queue, nats_url=nats_url).resume())
    console.print(f"Queue [bold]{queue}[/] resumed.")


@failed_app.command("list")
@guarded
def failed_list(
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """List dead letters, newest first."""
    from naq.dead_letters import list_failed_jobs

    jobs = run(list_failed_jobs(queue, settings=settings_for(nats_url)))
    if json_output:
        print(to_json([j.to_dict() for j in jobs]))
        return
    if not jobs:
        console.print("No failed jobs.")
        return
    table = Table(title=f"{len(jobs)} failed job(s)")
    for column in ("job id", "queue", "function", "failed", "reason", "error"):
        table.add_column(column, overflow="fold" if column == "job id" else "ellipsis")
    for j in jobs:
        table.add_row(
            j.job_id or f"#{j.seq}",
            j.queue,
            j.function or "-",
            fmt_time(j.failed_at),
            j.reason,
            j.error or "-",
        )
    console.print(table, highlight=False)


JobIdArgument = Annotated[str | None, typer.Argument(help="The failed job's id.")]
AllFlag = Annotated[bool, typer.Option("--all", help="Every failed job (of --queue).")]
FailedQueue = Annotated[str | None, typer.Option("--queue", "-q", help="With --all: one queue.")]


def failed_action(
    job_id: str | None,
    all_jobs: bool,
    queue: str | None,
    nats_url: str | None,
    one: Callable[..., Coroutine[Any, Any, bool]],
    many: Callable[..., Coroutine[Any, Any, int]],
    done: str,
) -> None:
    """Run a dead-letter action on one job or, with ``--all``, on every one."""
    settings = settings_for(nats_url)
    if all_jobs:
        count = run(many(queue, settings=settings))
        console.print(f"{done} {count} failed job(s).")
        return
    if job_id is None:
        raise fail("give a job id or --all")
    run(one(job_id, settings=settings))  # an unknown id raises: one line, from run
    console.print(f"{done} failed job {job_id}.")


@failed_app.command("requeue")
@guarded
def failed_requeue(
    job_id: JobIdArgument = None,
    all_jobs: AllFlag = False,
    queue: FailedQueue = None,
    nats_url: NatsUrl = None,
) -> None:
    """Put a failed job (or all of them) back on its queue as a fresh attempt."""
    from naq.dead_letters import requeue_failed_job, requeue_failed_jobs

    failed_action(
        job_id, all_jobs, queue, nats_url, requeue_failed_job, requeue_failed_jobs, "Requeued"
    )


@failed_app.command("delete")
@guarded
def failed_delete(
    job_id: JobIdArgument = None,
    all_jobs: AllFlag = False,
    queue: FailedQueue = None,
    nats_url: NatsUrl = None,
) -> None:
    """Delete a failed job (or all of them)."""
    from naq.dead_letters import delete_failed_job, delete_failed_jobs

    failed_action(
        job_id, all_jobs, queue, nats_url, delete_failed_job, delete_failed_jobs, "Deleted"
    )


@job_app.command("cancel")
@guarded
def job_cancel(job_id: str, nats_url: NatsUrl = None) -> None:
    """Cancel a job: pending ones never run, running ones are interrupted."""
    from naq.jobs import cancel_job

    if not run(cancel_job(job_id, settings=settings_for(nats_url))):
        raise fail(f"job {job_id} has already ended; nothing to cancel")
    console.print(f"Job {job_id} cancelled.")


@app.command("jobs")
@guarded
def jobs_command(
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="Only this status (default: ended jobs)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many.")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many (paging).")] = 0,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """List jobs, newest first: the history of ended jobs, or any status."""
    from naq.jobs import list_jobs
    from naq.results import to_dict

    infos = run(list_jobs(queue, status, limit, offset, settings=settings_for(nats_url)))
    if json_output:
        print(to_json([to_dict(i) for i in infos]))
        return
    if not infos:
        console.print("No jobs.")
        return
    table = Table(title=f"{len(infos)} job(s)")
    for column in (
        "job id",
        "queue",
        "function",
        "status",
        "attempt",
        "ended",
        "duration",
        "error",
    ):
        table.add_column(column, overflow="fold" if column == "job id" else "ellipsis")
    colours = {"completed": "green", "failed": "red", "cancelled": "yellow"}
    for info in infos:
        colour = colours.get(info.status, "cyan")
        table.add_row(
            info.job_id,
            info.queue or "-",
            (info.function or "-").split(":")[-1],
            f"[{colour}]{info.status}[/]",
            str(info.attempt),
            fmt_time(info.ended_at),
            "-" if info.duration is None else f"{info.duration:.3f}s",
            info.error or "",
        )
    console.print(table, highlight=False)


@app.command("worker-stop")
@guarded
def worker_stop(
    name: Annotated[str, typer.Argument(help="Name of the worker to stop.")],
    nats_url: NatsUrl = None,
) -> None:
    """Ask a worker to stop gracefully (it finishes its running jobs)."""
    from naq.control import stop_worker

    if not run(stop_worker(name, settings=settings_for(nats_url))):
        raise fail(f"no live worker named {name!r} answered")
    console.print(f"Worker {name} is stopping.")


def main() -> None:
    """Entry point of the ``naq`` console script."""
    app()
