"""History at scale: does a page of ``list_jobs`` cost the same with 1,000 and 100,000 ended jobs?

One throwaway nats-server; jobs are ended through ``naq.store.JobStore.end`` in gathered
batches (result, final status and outcome-log entry, as real ends write them), across
``--queues`` queues, every ``--failed-every``-th one failed. After each history size of
``--sizes`` (the history grows from one to the next), ``--calls`` calls of each listing are
timed one after the other (two untimed first):

- ``list_jobs(limit=50)``: the newest ended jobs;
- ``list_jobs(status="failed", limit=50)``: the newest failed ones;
- ``list_jobs(queue=..., limit=50)``: the newest of one queue;
- ``list_jobs(status="pending", limit=50)`` (``--pending-calls``, fewer): a state that is not
  an end, found by its status records, among ``--pending`` enqueued jobs no worker takes.

Each listing is checked: a full page, of the status and queue asked for, the unfiltered one
from the last batch ended. A row's ratio is its rate against the same listing at the first
size: 1.00× means the history's size costs nothing.

Usage::

    .venv/bin/python bench/bench_history.py          # writes bench/results/history.json
    .venv/bin/python bench/bench_history.py --quick  # smoke run (small sizes), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import naq  # noqa: E402
from bench.common import (  # noqa: E402
    REPO_ROOT,
    Row,
    embedded_server,
    guarded,
    load_note,
    machine_info,
    percentile,
    print_table,
    reproduce_command,
    run_script,
    save_results,
    set_ratios,
)
from bench.seed_history import SEED_BATCH, end_jobs  # noqa: E402
from bench.tasks import noop  # noqa: E402
from naq.broker import Broker  # noqa: E402
from naq.job import new_job_id  # noqa: E402
from naq.models import JobStatus, StatusRecord  # noqa: E402
from naq.settings import Settings  # noqa: E402

NAME = "history"
TITLE = "History: list_jobs latency against the size of the history"
PENDING_QUEUE = "hist_waiting"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[1_000, 100_000],
        help="ended jobs in the history at each measurement, ascending (1000,100000)",
    )
    p.add_argument("--calls", type=int, default=20, help="timed calls of each listing (20)")
    p.add_argument("--pending-calls", type=int, default=5, help="of the pending listing (5)")
    p.add_argument("--limit", type=int, default=50, help="page size (50)")
    p.add_argument("--queues", type=int, default=5, help="queues the history spreads over (5)")
    p.add_argument("--failed-every", type=int, default=10, help="every n-th job failed (10)")
    p.add_argument("--pending", type=int, default=100, help="jobs left pending (100)")
    p.add_argument("--batch", type=int, default=SEED_BATCH, help=f"ends gathered ({SEED_BATCH})")
    p.add_argument("--quick", action="store_true", help="sizes 500,5000, 5 calls; no files")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = [500, 5_000]
        args.calls = min(args.calls, 5)
        args.pending_calls = min(args.pending_calls, 2)
    if args.sizes != sorted(set(args.sizes)) or args.sizes[0] < 1:
        p.error(f"--sizes {args.sizes} must be positive and ascending")
    if (
        args.sizes[0] < args.limit * max(args.failed_every, args.queues)
        or args.pending < args.limit
    ):
        p.error(
            f"--sizes {args.sizes[0]} and --pending {args.pending} must give each listing a full "
            f"page of {args.limit}"
        )
    return args


@dataclass(frozen=True)
class Listing:
    """One ``list_jobs`` query: its label and keyword arguments."""

    label: str
    kwargs: dict[str, Any]
    ended: bool = True


def listings(args: argparse.Namespace) -> list[Listing]:
    limit = args.limit
    return [
        Listing(f"list_jobs(limit={limit})", {"limit": limit}),
        Listing(
            f'list_jobs(status="failed", limit={limit})',
            {"status": JobStatus.FAILED, "limit": limit},
        ),
        Listing(f'list_jobs(queue="hist0", limit={limit})', {"queue": "hist0", "limit": limit}),
        Listing(
            f'list_jobs(status="pending", limit={limit})',
            {"status": JobStatus.PENDING, "limit": limit},
            ended=False,
        ),
    ]


def history_record(args: argparse.Namespace, job_ids: list[str]) -> Any:
    """The maker of job ``i``'s record for :func:`end_jobs` (its id appended to ``job_ids``)."""
    now = time.time()

    def record(i: int) -> StatusRecord:
        job_id = new_job_id()
        job_ids.append(job_id)
        failed = i % args.failed_every == 0
        return StatusRecord(
            job_id=job_id,
            status=JobStatus.FAILED if failed else JobStatus.COMPLETED,
            queue=f"hist{i % args.queues}",
            function="billing.tasks:charge_card",
            enqueued_at=now,
            updated_at=now,
            attempt=1,
            args=[i, "customer@example.com"],
            error="ValueError: card declined" if failed else None,
        )

    return record


def check(listing: Listing, found: list[Any], limit: int, newest: set[str]) -> None:
    """Raise RuntimeError unless ``found`` is a full page of what ``listing`` asks for."""
    if len(found) != limit:
        raise RuntimeError(f"{listing.label}: {len(found)} jobs, expected {limit}")
    status = listing.kwargs.get("status")
    queue = listing.kwargs.get("queue")
    for info in found:
        if (status and info.status != status) or (queue and info.queue != queue):
            raise RuntimeError(
                f"{listing.label}: job {info.job_id} is {info.status} on {info.queue}"
            )
        if listing.ended and info.status not in JobStatus.ENDED:
            raise RuntimeError(f"{listing.label}: job {info.job_id} has not ended")
    if listing.kwargs.keys() == {"limit"} and not {i.job_id for i in found} <= newest:
        raise RuntimeError(f"{listing.label}: not the newest ended jobs")


async def time_listing(
    settings: Settings, listing: Listing, calls: int, limit: int, newest: set[str]
) -> list[float]:
    """Seconds of each of ``calls`` timed calls (after two untimed ones), each checked."""
    timings = []
    for index in range(calls + 2):
        t0 = time.perf_counter()
        found = await naq.list_jobs(**listing.kwargs, settings=settings)
        elapsed = time.perf_counter() - t0
        check(listing, found, limit, newest)
        if index >= 2:
            timings.append(elapsed)
    return timings


async def measure_listing(
    row: Row, settings: Settings, listing: Listing, limit: int, newest: set[str]
) -> None:
    """Fill ``row`` with ``row.count`` timed calls of ``listing``: their total, median and
    p90, and each call's seconds (``extra["seconds"]``)."""
    spent = await time_listing(settings, listing, row.count, limit, newest)
    values = sorted(spent)
    row.seconds = sum(spent)
    row.extra.update(
        seconds=spent,
        median_ms=percentile(values, 50) * 1000,
        p90_ms=percentile(values, 90) * 1000,
    )


async def run(url: str, args: argparse.Namespace) -> tuple[list[Row], list[str], dict[str, Any]]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    settings = Settings(nats_url=url, prefix=prefix)
    broker = await Broker.connect(settings)
    rows: list[Row] = []
    notes: list[str] = []
    info: dict[str, Any] = {"prefix": prefix}
    #: listing label -> history size -> its row
    by_label: dict[str, dict[int, Row]] = {}
    try:
        await naq.Queue(PENDING_QUEUE, settings=settings).enqueue_many(
            [(noop, (), {})] * args.pending
        )
        job_ids: list[str] = []
        record = history_record(args, job_ids)
        seeded = 0
        for size in args.sizes:
            seconds = await end_jobs(broker, record, size - seeded, first=seeded, batch=args.batch)
            rows.append(
                Row(f"seed: JobStore.end, {seeded:,} → {size:,}", size - seeded, seconds, "job/s")
            )
            seeded = size
            # Batches end one after the other, in any order within one: the newest page
            # lies in the last batch, or the last two when the last is short.
            newest = set(job_ids[-(args.batch + args.limit) :])
            for listing in listings(args):
                earlier = by_label.setdefault(listing.label, {})
                row = Row(
                    f"{listing.label}, {size:,} ended",
                    args.calls if listing.ended else args.pending_calls,
                    0.0,
                    "call/s",
                    baseline=earlier[args.sizes[0]].name if earlier else None,
                )
                earlier[size] = row
                measure = functools.partial(
                    measure_listing, row, settings, listing, args.limit, newest
                )
                rows.append(await guarded(row, measure))
    finally:
        await naq.disconnect()
    set_ratios(rows)
    low, high = args.sizes[0], args.sizes[-1]
    for label, by_size in by_label.items():
        if any(row.error for row in by_size.values()):
            continue
        figures = "; ".join(
            f"{size:,} ended: median {row.extra['median_ms']:.1f} ms, "
            f"p90 {row.extra['p90_ms']:.1f} ms"
            for size, row in by_size.items()
        )
        growth = by_size[high].extra["median_ms"] / by_size[low].extra["median_ms"]
        notes.append(f"{label}: {figures}; median at {high:,} / at {low:,} = {growth:.2f}×.")
        info.setdefault("median_growth", {})[label] = growth
    notes.append(
        f"History: jobs ended through JobStore.end in gathered batches of {args.batch} "
        f"(result, final status, outcome-log entry each), over {args.queues} queues, one in "
        f"{args.failed_every} failed; {args.pending} more jobs pending on a queue no worker "
        "takes. The pending listing finds its jobs by their status records, the ended ones "
        "from the outcome log's tail."
    )
    return rows, notes, info


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, parse_args, argv, "nats-server stopped")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    machine = machine_info()
    load_before = os.getloadavg()[0]
    with embedded_server() as server:
        print(f"nats-server {machine['nats_server']} at {server.url}", flush=True)
        rows, notes, info = asyncio.run(run(server.url, args))
    notes.append(load_note(load_before))
    print_table(TITLE + (" (quick)" if args.quick else ""), rows)
    for note in notes:
        print("-", note)
    if args.quick:
        print("quick run: no result files written")
        return 1 if any(row.error for row in rows) else 0
    path = save_results(
        NAME,
        title=TITLE,
        command=reproduce_command("bench_history.py", argv),
        rows=rows,
        params={k: v for k, v in vars(args).items()} | info,
        notes=notes,
        machine=machine,
    )
    print(f"wrote {path.relative_to(REPO_ROOT)} and bench/RESULTS.md")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
