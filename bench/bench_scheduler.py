"""Scheduler fire precision: how late does naq's scheduler enqueue a run after its due time?

One in-process :class:`naq.Scheduler` (HA on, as deployed) against a throwaway nats-server, no
worker: what is measured is the scheduler alone. For every run, lateness = the run's enqueue time
(``enqueued_at`` of its status record, stamped by the scheduler as it fires the run; read back with
``naq.get_job``) minus the due time the test set. Three scenarios, all created before the first
run is due:

1. ``spread``: N one-shot ``enqueue_at`` jobs due every ``--spacing`` seconds (default 200, 20 ms
   apart): the steady-state precision of the sleep-until-due loop;
2. ``burst``: N one-shot ``enqueue_at`` jobs all due at the same instant (default 100): how long the
   last of a crowd waits (runs are fired one after the other);
3. ``interval``: S recurring schedules ``interval=I, repeat=R`` (default 10 x 0.25 s x 12 = 120
   runs); run ``k`` of a schedule is due ``first_due + (k - 1) * I``.

It also checks that every run was enqueued exactly once (``Scheduler.enqueued`` equals the number
of runs: a re-fire of a run, even one the stream deduplicates, would count twice).

Usage::

    .venv/bin/python bench/bench_scheduler.py          # writes bench/results/scheduler.json
    .venv/bin/python bench/bench_scheduler.py --quick  # smoke run (N/4), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import naq  # noqa: E402
from bench.common import (  # noqa: E402
    RESULTS_DIR,
    Row,
    embedded_server,
    install_stop_handlers,
    machine_info,
    percentile,
    reproduce_command,
)
from bench.tasks import noop  # noqa: E402
from naq.broker import Broker  # noqa: E402
from naq.schedules import ScheduleStore  # noqa: E402
from naq.settings import Settings  # noqa: E402

NAME = "scheduler"
TITLE = "Scheduler: fire precision (enqueue time - due time)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spread", type=int, default=200, help="one-shot jobs, spread out (200)")
    p.add_argument("--spacing", type=float, default=0.02, help="seconds between them (0.02)")
    p.add_argument("--burst", type=int, default=100, help="one-shot jobs due at once (100)")
    p.add_argument("--schedules", type=int, default=10, help="interval schedules (10)")
    p.add_argument("--interval", type=float, default=0.25, help="their interval, s (0.25)")
    p.add_argument("--repeat", type=int, default=12, help="runs of each (12)")
    p.add_argument("--lead", type=float, default=1.5, help="s from creation to first due (1.5)")
    p.add_argument("--quick", action="store_true", help="N/4, print only: write no result files")
    args = p.parse_args(argv)
    if args.quick:
        args.spread = max(1, args.spread // 4)
        args.burst = max(1, args.burst // 4)
        args.repeat = max(1, args.repeat // 4)
    return args


@dataclass
class Scenario:
    name: str
    description: str
    #: (job id, due time) of every run.
    runs: list[tuple[str, float]]
    lateness_ms: list[float] | None = None
    missing: int = 0

    def stats(self) -> dict[str, Any]:
        values = sorted(self.lateness_ms or [])
        if not values:
            return {"ticks": 0, "missing": self.missing}
        return {
            "ticks": len(values),
            "missing": self.missing,
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "max_ms": values[-1],
            "min_ms": values[0],
            "mean_ms": statistics.fmean(values),
        }


async def run_scheduler_bench(
    url: str, args: argparse.Namespace
) -> tuple[list[Scenario], dict[str, Any]]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    settings = Settings(nats_url=url, prefix=prefix)
    queue = naq.Queue("bench_sched", settings=settings)
    info: dict[str, Any] = {"prefix": prefix}
    store = ScheduleStore(await Broker.connect(settings))

    scheduler = naq.Scheduler(settings=settings, install_signal_handlers=False)
    task = asyncio.create_task(scheduler.run())
    deadline = time.monotonic() + 15
    while not scheduler.is_leader:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("scheduler did not take the lease")
        await asyncio.sleep(0.01)

    try:
        # Warm up the connection and buckets (not measured).
        await queue.enqueue_at(time.time() + 0.05, noop)
        await asyncio.sleep(0.3)

        scenarios: list[Scenario] = []
        t0 = time.time() + args.lead + 0.5

        spread = Scenario(
            "spread",
            f"{args.spread} enqueue_at jobs, {args.spacing * 1000:g} ms apart",
            [],
        )
        for i in range(args.spread):
            due = t0 + i * args.spacing
            job = await queue.enqueue_at(due, noop)
            spread.runs.append((job.job_id, due))
        scenarios.append(spread)

        burst_due = t0 + args.spread * args.spacing + 1.0
        burst = Scenario("burst", f"{args.burst} enqueue_at jobs due at the same instant", [])
        for _ in range(args.burst):
            job = await queue.enqueue_at(burst_due, noop)
            burst.runs.append((job.job_id, burst_due))
        scenarios.append(burst)

        recurring = Scenario(
            "interval",
            f"{args.schedules} schedules x interval {args.interval:g} s x repeat {args.repeat}",
            [],
        )
        for _ in range(args.schedules):
            job = await queue.schedule(noop, interval=args.interval, repeat=args.repeat)
            # The stored record (one direct KV get, no listing) gives the exact first due time.
            found = await store.get(job.job_id)
            assert found is not None, job.job_id
            record = found[0]
            for k in range(1, args.repeat + 1):
                run_id = job.job_id if k == 1 else f"{job.job_id}_{k}"
                recurring.runs.append((run_id, record.next_run + (k - 1) * args.interval))
        scenarios.append(recurring)
        created = time.time()
        info["creation_seconds"] = round(created - (t0 - args.lead - 0.5), 3)
        if created > t0:
            print(f"warning: still creating schedules {created - t0:.2f}s after the first due")

        # Wait until the scheduler has fired every run (+1: the warm-up job), then a little more
        # so that a run fired twice would show in the count.
        expected = sum(len(s.runs) for s in scenarios) + 1
        last_due = max(due for s in scenarios for _, due in s.runs)
        await asyncio.sleep(max(0.0, last_due - time.time()))
        deadline = time.monotonic() + 30
        while scheduler.enqueued < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {scheduler.enqueued - 1} of {expected - 1} runs enqueued 30 s after "
                    "the last due time"
                )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

        total_runs = 0
        for scenario in scenarios:
            infos = await asyncio.gather(
                *(naq.get_job(job_id, settings=settings) for job_id, _ in scenario.runs),
                return_exceptions=True,
            )
            scenario.lateness_ms = []
            for (_job_id, due), job_info in zip(scenario.runs, infos, strict=True):
                if isinstance(job_info, BaseException) or job_info.enqueued_at is None:
                    scenario.missing += 1
                    continue
                scenario.lateness_ms.append((job_info.enqueued_at - due) * 1000.0)
            total_runs += len(scenario.runs)
        info["runs"] = total_runs
        info["scheduler_enqueued"] = scheduler.enqueued - 1  # minus the warm-up job
        return scenarios, info
    finally:
        scheduler.request_stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


def print_table(scenarios: list[Scenario]) -> None:
    headers = ["scenario", "ticks", "p50 ms", "p99 ms", "max ms", "min ms", "missing"]
    cells = []
    for s in scenarios:
        st = s.stats()
        cells.append(
            [
                f"{s.name}: {s.description}",
                str(st["ticks"]),
                *(
                    f"{st[k]:.2f}" if k in st else "—"
                    for k in ("p50_ms", "p99_ms", "max_ms", "min_ms")
                ),
                str(st["missing"]),
            ]
        )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(TITLE)
        for row in [headers, *cells]:
            print("  ".join(row))
        return
    table = Table(title=TITLE)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in cells:
        table.add_row(*row)
    Console().print(table)


def main(argv: list[str]) -> int:
    install_stop_handlers()
    args = parse_args(argv)
    with embedded_server() as server:
        scenarios, info = asyncio.run(run_scheduler_bench(server.url, args))
    print_table(scenarios)

    all_lateness = sorted(v for s in scenarios for v in (s.lateness_ms or []))
    overall = Scenario("all", "every run", [], all_lateness).stats()
    print(
        f"all {overall['ticks']} runs: p50 {overall['p50_ms']:.2f} ms, "
        f"p99 {overall['p99_ms']:.2f} ms, max {overall['max_ms']:.2f} ms"
    )
    duplicates = info["scheduler_enqueued"] - info["runs"]
    print(f"scheduler enqueued {info['scheduler_enqueued']} times for {info['runs']} runs")
    ok = all(s.missing == 0 for s in scenarios) and duplicates == 0
    if not ok:
        print("error: runs missing or enqueued more than once", file=sys.stderr)

    if args.quick:
        return 0 if ok else 1

    rows = []
    notes = [
        "Lateness = enqueued_at stamped by the scheduler as it fires a run minus the run's due "
        "time; no worker runs, so this is the scheduler alone (in-process, HA on, one instance)."
    ]
    for s in scenarios:
        st = s.stats()
        span = (max(d for _, d in s.runs) - min(d for _, d in s.runs)) if s.runs else 0.0
        row = Row(
            name=f"{s.name}: {s.description}",
            count=st["ticks"],
            seconds=round(span + st.get("max_ms", 0.0) / 1000.0, 3),
            unit="runs/s",
            note=(
                f"lateness p50 {st['p50_ms']:.2f} ms, p99 {st['p99_ms']:.2f} ms, "
                f"max {st['max_ms']:.2f} ms"
            ),
            error=None if s.missing == 0 else f"{s.missing} runs never enqueued",
            extra={k: round(v, 3) if isinstance(v, float) else v for k, v in st.items()},
        )
        rows.append(row)
        notes.append(f"{row.name}: {row.note}.")
    notes.append(
        f"All {overall['ticks']} runs: p50 {overall['p50_ms']:.2f} ms, p99 "
        f"{overall['p99_ms']:.2f} ms, max {overall['max_ms']:.2f} ms; the scheduler enqueued "
        f"{info['scheduler_enqueued']} times for {info['runs']} runs."
    )
    params = {k: v for k, v in vars(args).items()} | info
    payload = {
        "name": NAME,
        "title": TITLE,
        "command": reproduce_command("bench_scheduler.py", argv),
        "machine": machine_info(),
        "params": params,
        "rows": [row.to_json() for row in rows],
        "overall": {k: round(v, 3) if isinstance(v, float) else v for k, v in overall.items()},
        "notes": notes,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{NAME}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(RESULTS_DIR.parent.parent)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
