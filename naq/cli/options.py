"""The options several commands share, each defined once."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.id_prefix import MIN_PREFIX

NatsUrl = Annotated[
    str | None,
    typer.Option(
        "--nats-url", "-u", help="NATS server URL(s), comma separated \\[env NAQ_NATS_URL]."
    ),
]
LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level", "-l", help="Logging level, DEBUG to CRITICAL \\[env NAQ_LOG_LEVEL]."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
QueueFilter = Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")]

#: What an argument naming a job, schedule, dead letter or worker accepts.
PREFIX_HELP = f"or a unique start of it (at least {MIN_PREFIX} characters)"

JobId = Annotated[str, typer.Argument(help=f"The job's id, {PREFIX_HELP}.")]
ScheduleId = Annotated[str, typer.Argument(help=f"The scheduled job's id, {PREFIX_HELP}.")]
WorkerName = Annotated[str, typer.Argument(help=f"Name of the worker, {PREFIX_HELP}.")]

# Filters of a schedule listing.
ScheduleStatus = Annotated[
    str | None, typer.Option("--status", "-s", help="active, paused or failed.")
]
ScheduleIdFilter = Annotated[
    str | None, typer.Option("--job-id", "-j", help=f"Only this job, {PREFIX_HELP}.")
]
ScheduleQueue = Annotated[
    str | None, typer.Option("--queue", "-q", help="Only this queue (default: all).")
]
Detailed = Annotated[bool, typer.Option("--detailed", "-d", help="More columns.")]

# What a reschedule changes.
Cron = Annotated[str | None, typer.Option(help="New cron expression (reschedule).")]
Interval = Annotated[float | None, typer.Option(help="New interval in seconds (reschedule).")]
Repeat = Annotated[int | None, typer.Option(help="New total number of runs (reschedule).")]
NextRun = Annotated[
    str | None, typer.Option(help="Next run, ISO time like 2030-01-01T12:00:00Z (reschedule).")
]
