"""Jobs: ``naq enqueue``, the ``naq jobs`` history and ``naq job show|result|wait|cancel``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from naq.cli.app import app
from naq.cli.options import JobId, JsonFlag, NatsUrl, QueueFilter
from naq.cli.output import console, fmt_time, to_json
from naq.cli.runner import fail, guarded, run, settings_for
from naq.cli.tables import Column, print_listing, print_record
from naq.settings import Settings

job_app = typer.Typer(help="One job: show, result, wait, cancel.", no_args_is_help=True)
app.add_typer(job_app, name="job")

STATUS_COLOURS = {"completed": "green", "failed": "red", "cancelled": "yellow"}


def status_style(status: str) -> str:
    """A job status's colour."""
    return STATUS_COLOURS.get(status, "cyan")


JOB_COLUMNS = (
    Column("job id", "id"),
    Column("queue", "fixed", 70),
    Column("function", "text", 80, cut="left"),
    Column("status", "fixed", 90, style=status_style),
    Column("attempt", "fixed", 30, "right"),
    Column("ended", "fixed", 60),
    Column("duration", "fixed", 40, "right"),
    Column("error", "text", 50),
)


async def _job_id(text: str, settings: Settings) -> str:
    """The job ``text`` names: its id, or a unique start of one."""
    from naq.id_prefix import resolve_job_id

    return await resolve_job_id(text, settings=settings)


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


@app.command("jobs")
@guarded
def jobs_command(
    queue: QueueFilter = None,
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
    rows = [
        [
            info.job_id,
            info.queue or "-",
            info.function or "-",
            info.status,
            str(info.attempt),
            fmt_time(info.ended_at),
            "-" if info.duration is None else f"{info.duration:.3f}s",
            info.error or "-",
        ]
        for info in infos
    ]
    print_listing(f"{len(infos)} job(s)", JOB_COLUMNS, rows)


def describe_attempt(attempt: dict[str, Any]) -> str:
    """One line of a job's attempts: where and when it ran, how long, how it failed."""
    started, ended = attempt["started_at"], attempt["ended_at"]
    took = f"{ended - started:.3f}s" if started is not None and ended is not None else "no end"
    error = f", {attempt['error']}" if attempt["error"] else ""
    return f"{attempt['worker'] or '-'}, {fmt_time(started)}, {took}{error}"


def print_job(info: Any, json_output: bool) -> None:
    """Print a JobInfo as field-value lines (then its traceback), or as JSON."""
    if json_output:
        data = dict(info.__dict__)
        data["duration"] = info.duration
        print(to_json(data))
        return
    fields = [
        ("job id", info.job_id),
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
    if len(info.attempts_log) > 1:
        fields += [(f"attempt {a['attempt']}", describe_attempt(a)) for a in info.attempts_log]
    if info.depends_on:
        fields.append(("depends on", ", ".join(info.depends_on)))
    if info.next_retry_at:
        fields.append(("next retry", fmt_time(info.next_retry_at)))
    if info.progress is not None:
        message = f" {info.progress_message}" if info.progress_message else ""
        fields.append(("progress", f"{info.progress:.0%}{message}"))
    if info.meta:
        fields.append(("meta", to_json(info.meta)))
    if info.status == "completed":
        fields.append(("result", to_json(info.result)))
    if info.error:
        fields.append(("error", info.error))
    print_record(fields)
    if info.traceback:
        console.print(info.traceback, markup=False)


@job_app.command("show")
@guarded
def job_show(job_id: JobId, nats_url: NatsUrl = None, json_output: JsonFlag = False) -> None:
    """Show a job's status, attempts, timings and outcome."""
    from naq.jobs import get_job

    settings = settings_for(nats_url)

    async def go() -> Any:
        return await get_job(await _job_id(job_id, settings), settings=settings)

    print_job(run(go()), json_output)


@job_app.command("result")
@guarded
def job_result(job_id: JobId, nats_url: NatsUrl = None, json_output: JsonFlag = False) -> None:
    """Print a finished job's return value as JSON (exit 1 if it failed, was cancelled or
    has not finished)."""
    from naq.errors import JobCancelledError, JobExecutionError
    from naq.jobs import fetch_job_result

    settings = settings_for(nats_url)

    async def go() -> tuple[str, Any, JobExecutionError | None]:
        full_id = await _job_id(job_id, settings)
        try:
            return full_id, await fetch_job_result(full_id, settings=settings), None
        except JobExecutionError as exc:
            return full_id, None, exc

    full_id, value, error = run(go())
    if error is not None:
        status = "cancelled" if isinstance(error, JobCancelledError) else "failed"
        if json_output:
            print(to_json({"job_id": full_id, "status": status, "error": error.error}))
            raise typer.Exit(1)
        raise fail(f"job {full_id} {status}: {error.error}")
    print(to_json({"job_id": full_id, "result": value}) if json_output else to_json(value))


@job_app.command("wait")
@guarded
def job_wait(
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Wait until a job ends, then show it (exit 1 unless it completed)."""
    from naq.jobs import wait_for_job

    settings = settings_for(nats_url)

    async def go() -> Any:
        return await wait_for_job(await _job_id(job_id, settings), timeout, settings=settings)

    info = run(go())
    print_job(info, json_output)
    if info.status != "completed":
        raise typer.Exit(1)


@job_app.command("cancel")
@guarded
def job_cancel(job_id: JobId, nats_url: NatsUrl = None) -> None:
    """Cancel a job: pending ones never run, running ones are interrupted."""
    from naq.jobs import cancel_job

    settings = settings_for(nats_url)

    async def go() -> tuple[str, bool]:
        full_id = await _job_id(job_id, settings)
        return full_id, await cancel_job(full_id, settings=settings)

    full_id, cancelled = run(go())
    if not cancelled:
        raise fail(f"job {full_id} has already ended; nothing to cancel")
    console.print(f"Job {full_id} cancelled.")
