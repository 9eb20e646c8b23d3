"""Schedules: ``naq scheduler`` runs one; ``naq schedules [list|pause|resume|cancel|
reschedule]`` lists and controls them, also spelt ``naq list-scheduled`` and
``naq job-control ID ACTION``."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from naq.cli.app import app
from naq.cli.options import (
    Cron,
    Detailed,
    Interval,
    JsonFlag,
    LogLevel,
    NatsUrl,
    NextRun,
    Repeat,
    ScheduleId,
    ScheduleIdFilter,
    ScheduleQueue,
    ScheduleStatus,
)
from naq.cli.output import console, fmt_time, to_json
from naq.cli.runner import fail, guarded, run, settings_for, setup_logging
from naq.cli.tables import Column, print_listing

schedules_app = typer.Typer(
    help="Scheduled jobs: list (the default), pause, resume, cancel, reschedule."
)
app.add_typer(schedules_app, name="schedules")

SCHEDULE_COLUMNS = (
    Column("job id", "id"),
    Column("queue", "fixed", 70),
    Column("function", "text", 78, cut="left"),
    Column("schedule", "text", 80),
    Column("next run", "fixed", 75),
    Column("status", "fixed", 90),
    Column("runs", "fixed", 40, "right"),
)
DETAILED_COLUMNS = (
    Column("repeat", "fixed", 35, "right"),
    Column("failures", "fixed", 30, "right"),
    Column("last run", "fixed", 25),
    Column("args", "text", 20),
    Column("last error", "text", 15),
)

ACTIONS = ("cancel", "pause", "resume", "reschedule")
DONE = {"cancel": "cancelled", "pause": "paused", "resume": "resumed", "reschedule": "rescheduled"}


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
@schedules_app.command("list")
@schedules_app.callback(invoke_without_command=True)
@guarded
def list_scheduled(
    ctx: typer.Context,
    nats_url: NatsUrl = None,
    status: ScheduleStatus = None,
    job_id: ScheduleIdFilter = None,
    queue: ScheduleQueue = None,
    detailed: Detailed = False,
    log_level: LogLevel = None,
    json_output: JsonFlag = False,
) -> None:
    """List scheduled jobs with their status and next run time."""
    from naq.id_prefix import resolve_schedule_id
    from naq.schedules import list_scheduled_jobs

    if ctx.invoked_subcommand is not None:
        return  # ``naq schedules pause ...``: the subcommand does the work
    setup_logging(log_level, "WARNING")
    settings = settings_for(nats_url)

    async def go() -> list[Any]:
        wanted = None if job_id is None else await resolve_schedule_id(job_id, settings=settings)
        return await list_scheduled_jobs(
            status=status, queue=queue, job_id=wanted, settings=settings
        )

    infos = run(go())
    if json_output:
        print(to_json([i.to_dict() for i in infos]))
        return
    if not infos:
        console.print("No scheduled jobs.")
        return
    columns = SCHEDULE_COLUMNS + (DETAILED_COLUMNS if detailed else ())
    rows = []
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
        rows.append(row)
    print_listing(f"{len(infos)} scheduled job(s)", columns, rows)


def control_schedule(
    job_id: str,
    action: str,
    nats_url: str | None,
    log_level: str | None,
    updates: dict[str, Any] | None = None,
) -> None:
    """Cancel, pause, resume or reschedule (with ``updates``) the schedule ``job_id`` names.

    The one implementation of ``naq job-control`` and ``naq schedules ACTION``.
    """
    from naq.id_prefix import resolve_schedule_id
    from naq.queue import Queue

    setup_logging(log_level, "INFO")
    if action not in ACTIONS:
        raise fail(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    changes = updates or {}
    if action == "reschedule" and not changes:
        raise fail("reschedule needs --cron, --interval, --repeat or --next-run")
    q = Queue(nats_url=nats_url)

    async def go() -> tuple[str, bool]:
        full_id = await resolve_schedule_id(job_id, settings=q.settings)
        if action == "cancel":
            return full_id, await q.cancel_scheduled_job(full_id)
        if action == "pause":
            return full_id, await q.pause_scheduled_job(full_id)
        if action == "resume":
            return full_id, await q.resume_scheduled_job(full_id)
        return full_id, await q.modify_scheduled_job(full_id, **changes)

    # An unknown id raises (one line, from run); False means it was in that state already.
    full_id, changed = run(go())
    if not changed:
        state = "paused" if action == "pause" else "active"
        raise fail(f"scheduled job {full_id!r} is {state} already; nothing to {action}")
    console.print(f"Scheduled job {full_id} {DONE[action]}.")


def reschedule_updates(
    cron: str | None, interval: float | None, repeat: int | None, next_run: str | None
) -> dict[str, Any]:
    """The schedule fields a reschedule's options change."""
    updates: dict[str, Any] = {}
    if cron is not None:
        updates["cron"] = cron
    if interval is not None:
        updates["interval"] = interval
    if repeat is not None:
        updates["repeat"] = repeat
    if next_run is not None:
        updates["scheduled_timestamp_utc"] = parse_iso(next_run)
    return updates


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


@app.command("job-control")
@guarded
def job_control(
    job_id: ScheduleId,
    action: Annotated[str, typer.Argument(help="cancel, pause, resume or reschedule.")],
    nats_url: NatsUrl = None,
    cron: Cron = None,
    interval: Interval = None,
    repeat: Repeat = None,
    next_run: NextRun = None,
    log_level: LogLevel = None,
) -> None:
    """Cancel, pause, resume or reschedule a scheduled job."""
    updates = None
    if action == "reschedule":
        updates = reschedule_updates(cron, interval, repeat, next_run)
    control_schedule(job_id, action, nats_url, log_level, updates)


@schedules_app.command("pause")
@guarded
def schedules_pause(
    job_id: ScheduleId, nats_url: NatsUrl = None, log_level: LogLevel = None
) -> None:
    """Pause a schedule: it runs no more until resumed."""
    control_schedule(job_id, "pause", nats_url, log_level)


@schedules_app.command("resume")
@guarded
def schedules_resume(
    job_id: ScheduleId, nats_url: NatsUrl = None, log_level: LogLevel = None
) -> None:
    """Resume a paused (or failed) schedule."""
    control_schedule(job_id, "resume", nats_url, log_level)


@schedules_app.command("cancel")
@guarded
def schedules_cancel(
    job_id: ScheduleId, nats_url: NatsUrl = None, log_level: LogLevel = None
) -> None:
    """Delete a schedule."""
    control_schedule(job_id, "cancel", nats_url, log_level)


@schedules_app.command("reschedule")
@guarded
def schedules_reschedule(
    job_id: ScheduleId,
    cron: Cron = None,
    interval: Interval = None,
    repeat: Repeat = None,
    next_run: NextRun = None,
    nats_url: NatsUrl = None,
    log_level: LogLevel = None,
) -> None:
    """Change a schedule's cron, interval, number of runs or next run."""
    updates = reschedule_updates(cron, interval, repeat, next_run)
    control_schedule(job_id, "reschedule", nats_url, log_level, updates)
