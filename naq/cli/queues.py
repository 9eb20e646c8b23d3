"""Queues: ``naq queues`` (counts per queue), ``naq queue pause|resume`` and ``naq purge``."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import JsonFlag, LogLevel, NatsUrl
from naq.cli.output import console, fmt_seconds, to_json
from naq.cli.runner import guarded, run, settings_for, setup_logging
from naq.cli.tables import Column, print_listing

queue_app = typer.Typer(help="Pause or resume a queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

COUNTS = ("pending", "running", "scheduled", "completed", "failed")
QUEUE_COLUMNS = (
    Column("queue", "id"),
    *(Column(name, "fixed", 50, "right") for name in COUNTS),
    Column("latency", "fixed", 60, "right"),
    Column("state", "fixed", 90, style=lambda state: "yellow" if state == "paused" else ""),
)


@app.command("queues")
@guarded
def queues_command(
    names: Annotated[list[str] | None, typer.Argument(help="Queues (default: all known).")] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Show pending, running, scheduled, completed and failed jobs per queue, and how long
    the oldest pending job has waited (latency)."""
    from naq.monitor import all_queue_stats

    stats = run(all_queue_stats(names or None, settings=settings_for(nats_url)))
    if json_output:
        print(to_json([s.to_dict() for s in stats]))
        return
    if not stats:
        console.print("No queues yet.")
        return
    rows = [
        [
            s.name,
            *(str(getattr(s, name)) for name in COUNTS),
            fmt_seconds(s.latency),
            "paused" if s.paused else "active",
        ]
        for s in stats
    ]
    print_listing(f"{len(stats)} queue(s)", QUEUE_COLUMNS, rows)


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
