"""Queues: ``naq queues`` (counts per queue), ``naq queue pause|resume|limit`` and
``naq purge``."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import JsonFlag, LogLevel, NatsUrl
from naq.cli.output import console, fmt_seconds, to_json
from naq.cli.runner import guarded, run, settings_for, setup_logging
from naq.cli.tables import Column, print_listing

queue_app = typer.Typer(help="Pause, resume or limit a queue.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

COUNTS = ("pending", "running", "scheduled", "completed", "failed")
QUEUE_COLUMNS = (
    Column("queue", "id"),
    *(Column(name, "fixed", 50, "right") for name in COUNTS),
    Column("latency", "fixed", 60, "right"),
    Column("state", "fixed", 90, style=lambda state: "yellow" if state == "paused" else ""),
    Column("limits", "text", 40),
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
            s.limits.describe(),
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


@queue_app.command("limit")
@guarded
def queue_limit(
    queue: str,
    concurrency: Annotated[
        str | None,
        typer.Option(
            help="At most N of QUEUE's jobs run at once over all workers ('none' removes it)."
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="At most this many job starts over all workers: 20/s, 100/m, 5/h "
            "('none' removes it)."
        ),
    ] = None,
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Limit QUEUE across all its workers; without options, show its limits."""
    from naq.limits import QueueLimits
    from naq.queue import Queue

    target = Queue(queue, nats_url=nats_url)
    changes: dict[str, object] = {}
    if concurrency is not None:
        changes["concurrency"] = _count_or_none(concurrency)
    if rate is not None:
        changes["rate"] = None if rate.strip().lower() in NONE_WORDS else rate

    async def go() -> QueueLimits:
        return await (target.set_limits(**changes) if changes else target.limits())

    limits = run(go())
    if json_output:
        print(to_json(limits.to_dict()))
        return
    console.print(f"Queue [bold]{queue}[/]: {limits.describe() or 'no limits'}.")


#: What ``--concurrency`` and ``--rate`` take to mean "remove the limit".
NONE_WORDS = ("none", "off", "unlimited")


def _count_or_none(text: str) -> object:
    """``--concurrency``'s value: a number, a word of :data:`NONE_WORDS`, or the text as
    it is (refused, by name, by ``set_limits``)."""
    word = text.strip().lower()
    if word in NONE_WORDS:
        return None
    return int(word) if word.lstrip("-").isdigit() else text


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
