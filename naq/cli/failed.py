"""Dead letters: ``naq failed list|requeue|delete``."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from naq.cli.app import app
from naq.cli.options import PREFIX_HELP, JsonFlag, NatsUrl, QueueFilter
from naq.cli.output import console, fmt_time, to_json
from naq.cli.runner import fail, guarded, run, settings_for
from naq.cli.tables import Column, print_listing

failed_app = typer.Typer(help="Dead letters: list, requeue, delete.", no_args_is_help=True)
app.add_typer(failed_app, name="failed")

FAILED_COLUMNS = (
    Column("job id", "id"),
    Column("queue", "fixed", 70),
    Column("function", "text", 65, cut="left"),
    Column("failed", "fixed", 50),
    Column("reason", "text", 60),
    Column("error", "text", 75),
)

#: How a listing names a dead letter without a job id: its stream sequence.
SEQ_ID = re.compile(r"^#(\d+)$")

FailedJobId = Annotated[
    str | None,
    typer.Argument(help=f"The failed job's id, {PREFIX_HELP}; or #SEQ as listed."),
]
AllFlag = Annotated[bool, typer.Option("--all", help="Every failed job (of --queue).")]
FailedQueue = Annotated[str | None, typer.Option("--queue", "-q", help="With --all: one queue.")]


@failed_app.command("list")
@guarded
def failed_list(
    queue: QueueFilter = None,
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
    rows = [
        [
            j.job_id or f"#{j.seq}",
            j.queue,
            j.function or "-",
            fmt_time(j.failed_at),
            j.reason,
            j.error or "-",
        ]
        for j in jobs
    ]
    print_listing(f"{len(jobs)} failed job(s)", FAILED_COLUMNS, rows)


def failed_action(
    job_id: str | None,
    all_jobs: bool,
    queue: str | None,
    nats_url: str | None,
    one: Callable[..., Coroutine[Any, Any, bool]],
    many: Callable[..., Coroutine[Any, Any, int]],
    done: str,
    by_seq: Callable[..., Coroutine[Any, Any, bool]] | None = None,
) -> None:
    """Run a dead-letter action on one job (by id, unique prefix, or ``#SEQ`` with
    ``by_seq``) or, with ``--all``, on every one."""
    from naq.id_prefix import resolve_failed_job_id

    settings = settings_for(nats_url)
    if all_jobs:
        count = run(many(queue, settings=settings))
        console.print(f"{done} {count} failed job(s).")
        return
    if job_id is None:
        raise fail("give a job id or --all")
    seq = SEQ_ID.match(job_id)
    if seq:
        if by_seq is None:
            # Only a message that is not a naq job has no job id.
            raise fail(f"failed job {job_id} has no job id, so it is not a naq job; delete it")
        run(by_seq(int(seq.group(1)), settings=settings))
        console.print(f"{done} failed job {job_id}.")
        return

    async def go() -> str:
        full_id = await resolve_failed_job_id(job_id, settings=settings)
        await one(full_id, settings=settings)  # an unknown id raises: one line, from run
        return full_id

    console.print(f"{done} failed job {run(go())}.")


@failed_app.command("requeue")
@guarded
def failed_requeue(
    job_id: FailedJobId = None,
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
    job_id: FailedJobId = None,
    all_jobs: AllFlag = False,
    queue: FailedQueue = None,
    nats_url: NatsUrl = None,
) -> None:
    """Delete a failed job (or all of them)."""
    from naq.dead_letters import delete_failed_job, delete_failed_jobs, delete_failed_seq

    failed_action(
        job_id,
        all_jobs,
        queue,
        nats_url,
        delete_failed_job,
        delete_failed_jobs,
        "Deleted",
        by_seq=delete_failed_seq,
    )
