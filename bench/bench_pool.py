"""The process pool (``naq worker Q --processes N``): what a supervisor costs, what a second
process adds to a drain of no-ops, and what processes gain over threads on CPU-bound jobs.

One throwaway nats-server (:func:`bench.common.embedded_server`). Every run pre-enqueues its
jobs (untimed) on a fresh queue, then times one process ``python -m naq worker QUEUE --burst
…`` from its spawn until it exits (a pool's supervisor exits once every child has ended its
burst), and afterwards checks that the queue's consumer has nothing pending or unacked and
that a sample of the jobs has its result stored. Configurations:

1. ``--n-drain`` (20,000) async no-ops (``bench.tasks:async_noop``), ``-c 100``:
   one plain worker process; a pool of one (``-P 1``); a pool of two (``-P 2``, each ``-c 100``).
2. ``--cpu-jobs`` (1,000) sync jobs of ``--cpu-ms`` (5) ms of pure-Python CPU work each
   (``bench.tasks:burn``, its loop count calibrated on this machine before the runs): one worker
   process with two threads (``-c 2``) against a pool of two with one slot each (``-P 2 -c 1``),
   the same two slots.

Each configuration runs ``--rounds`` (3) times, the rounds interleaved; a row's time is its
median. Each also runs once on an empty queue: its start-up and exit cost, which the notes
subtract for a rate without start-up.

Usage::

    .venv/bin/python bench/bench_pool.py          # writes bench/results/pool.json
    .venv/bin/python bench/bench_pool.py --quick  # smoke run (N/10, one round), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Puts the repo root on sys.path, so `bench.*` imports under its real name here and in workers.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

import naq  # noqa: E402
from bench.common import (  # noqa: E402
    REPO_ROOT,
    Row,
    children_cpu_seconds,
    embedded_server,
    guarded,
    load_note,
    log_tail,
    machine_info,
    print_table,
    reproduce_command,
    run_script,
    run_worker,
    save_results,
    set_ratios,
    wait_consumer_drained,
    worker_env,
)
from bench.tasks import async_noop, burn  # noqa: E402
from naq.names import Names  # noqa: E402
from naq.settings import Settings  # noqa: E402

NAME = "pool"
TITLE = "Process pool: supervisor cost, drain over processes, CPU-bound jobs"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-drain", type=int, default=20000, help="async no-op jobs per drain (20000)")
    p.add_argument("--concurrency", "-c", type=int, default=100, help="drain workers' -c (100)")
    p.add_argument("--cpu-jobs", type=int, default=1000, help="CPU-bound jobs per run (1000)")
    p.add_argument("--cpu-ms", type=float, default=5.0, help="CPU ms per such job (5)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each configuration (3)")
    p.add_argument("--chunk", type=int, default=1000, help="enqueue_many chunk size (1000)")
    p.add_argument(
        "--worker-timeout", type=float, default=600.0, help="seconds before a run is killed"
    )
    p.add_argument("--quick", action="store_true", help="N/10, one round, print only: no files")
    args = p.parse_args(argv)
    if args.quick:
        args.n_drain = max(100, args.n_drain // 10)
        args.cpu_jobs = max(20, args.cpu_jobs // 10)
        args.rounds = 1
    return args


@dataclass
class Config:
    """One way of running the workers, and the jobs it drains."""

    key: str
    row_name: str
    flags: list[str]
    cpu_bound: bool
    baseline: str | None = None


def configs(args: argparse.Namespace) -> list[Config]:
    c = str(args.concurrency)
    plain = f"one worker process -c {c}, async no-op"
    pool1 = f"pool -P 1 -c {c}, async no-op"
    threads = f"one worker process -c 2, {args.cpu_ms:g} ms CPU-bound sync jobs"
    return [
        Config("plain", plain, ["-c", c], cpu_bound=False),
        Config("pool1", pool1, ["-P", "1", "-c", c], cpu_bound=False, baseline=plain),
        Config("pool2", f"pool -P 2 -c {c}, async no-op", ["-P", "2", "-c", c], False, pool1),
        Config("threads", threads, ["-c", "2"], cpu_bound=True),
        Config(
            "procs",
            f"pool -P 2 -c 1, {args.cpu_ms:g} ms CPU-bound sync jobs",
            ["-P", "2", "-c", "1"],
            cpu_bound=True,
            baseline=threads,
        ),
    ]


def calibrate(cpu_ms: float) -> int:
    """The loop count of :func:`bench.tasks.burn` that takes ``cpu_ms`` here (best of 5)."""
    probe = 200_000
    best = min(_timed_burn(probe) for _ in range(5))
    return max(1, round(probe * cpu_ms / 1000.0 / best))


def _timed_burn(iterations: int) -> float:
    start = time.process_time()
    burn(iterations)
    return time.process_time() - start


async def drain(
    js: Any,
    settings: Settings,
    queue_name: str,
    config: Config,
    n: int,
    iterations: int,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:
    """Enqueue ``n`` jobs (untimed), time one ``naq worker`` process draining them."""
    queue = naq.Queue(queue_name, settings=settings)
    await queue._broker()  # the stream must exist even when no job is enqueued
    call: tuple[Any, tuple[Any, ...], dict[str, Any]] = (
        (burn, (iterations,), {}) if config.cpu_bound else (async_noop, (), {})
    )
    jobs: list[Any] = []
    for start in range(0, n, args.chunk):
        jobs += await queue.enqueue_many([call] * min(args.chunk, n - start))
    url = settings.nats_url
    cmd = [sys.executable, "-m", "naq", "worker", queue_name, "--burst", "-u", url, *config.flags]
    log = workdir / f"{queue_name}.log"
    cpu_before = children_cpu_seconds()
    seconds, code = await run_worker(
        cmd, worker_env(url, settings.prefix), log, args.worker_timeout
    )
    # The supervisor waited for its children: their CPU time is counted in its own.
    cpu = children_cpu_seconds() - cpu_before
    if code != 0:
        raise RuntimeError(f"{config.key} exited with code {code}: {log_tail(log, 5)}")
    names = Names(settings.prefix)
    state = await wait_consumer_drained(js, names.jobs_stream, names.consumer(queue_name))
    if state.num_pending or state.num_ack_pending:
        raise RuntimeError(
            f"{config.key}: {state.num_pending} pending, {state.num_ack_pending} unacked after exit"
        )
    for job in random.sample(jobs, min(50, len(jobs))):
        value = await naq.fetch_job_result(job.job_id, settings=settings)
        if value is not None:
            raise RuntimeError(f"job {job.job_id}: result {value!r}, expected None")
    return {"seconds": seconds, "cpu_seconds": cpu, "command": " ".join(cmd)}


async def run(
    url: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[Row], list[str], dict[str, Any]]:
    prefix = "pool" + uuid.uuid4().hex[:8]
    settings = Settings(nats_url=url, prefix=prefix)
    iterations = calibrate(args.cpu_ms)
    info: dict[str, Any] = {"prefix": prefix, "burn_iterations": iterations}
    plan = configs(args)
    rows = {
        c.key: Row(
            c.row_name,
            args.cpu_jobs if c.cpu_bound else args.n_drain,
            0.0,
            "job/s",
            baseline=c.baseline,
        )
        for c in plan
    }
    rounds: dict[str, list[dict[str, Any]]] = {c.key: [] for c in plan}
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    try:
        for r in range(args.rounds):
            # Each round in another order, so a machine getting busier weighs on all alike.
            order = plan[r % len(plan) :] + plan[: r % len(plan)]
            for config in order:
                row = rows[config.key]
                if row.error:
                    continue

                async def one(config: Config = config, row: Row = row, r: int = r) -> None:
                    out = await drain(
                        js,
                        settings,
                        f"{config.key}{r}",
                        config,
                        row.count,
                        iterations,
                        args,
                        workdir,
                    )
                    rounds[config.key].append(out)

                await guarded(row, one)
        for config in plan:
            row = rows[config.key]

            async def empty(config: Config = config, row: Row = row) -> None:
                out = await drain(
                    js, settings, f"{config.key}empty", config, 0, iterations, args, workdir
                )
                row.extra["empty_seconds"] = round(out["seconds"], 3)

            if not row.error:
                await guarded(row, empty)
    finally:
        await naq.disconnect()
        await nc.close()

    for config in plan:
        row = rows[config.key]
        runs = rounds[config.key]
        if row.error or not runs:
            continue
        row.seconds = statistics.median(out["seconds"] for out in runs)
        row.extra.update(
            round_seconds=[round(out["seconds"], 3) for out in runs],
            cpu_seconds=round(statistics.median(out["cpu_seconds"] for out in runs), 3),
            command=runs[0]["command"],
        )
    table = list(rows.values())
    set_ratios(table)
    return table, notes_for(table, args, iterations), info


def notes_for(rows: list[Row], args: argparse.Namespace, iterations: int) -> list[str]:
    notes = [
        f"Each row: the median of {args.rounds} runs, each timed from spawning `naq worker "
        "QUEUE --burst …` to its exit (for a pool, the supervisor's exit, after its children "
        "ended their bursts): interpreter start-up, imports and connecting are included. The "
        "last column is the rate against the row named as its baseline: the plain process for "
        "the pool of one, the pool of one for the pool of two, the threads for the processes.",
        f"CPU-bound jobs: bench.tasks:burn({iterations:,}), a pure-Python loop calibrated to "
        f"{args.cpu_ms:g} ms of CPU here; it holds the GIL, so two threads of one process run "
        "one job at a time while two processes run two.",
    ]
    for row in rows:
        if row.error or "empty_seconds" not in row.extra:
            continue
        busy = row.seconds - row.extra["empty_seconds"]
        without = f"≈ {row.count / busy:,.0f} job/s" if busy > 0 else "— (start-up dominates)"
        notes.append(
            f"{row.name}: runs {', '.join(f'{s:.2f}' for s in row.extra['round_seconds'])} s; "
            f"empty queue {row.extra['empty_seconds']:.2f} s; {without} with that subtracted; "
            f"CPU {row.extra['cpu_seconds']:.2f} s (all its processes, start-up included)."
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, parse_args, argv, "workers and nats-server stopped")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    machine = machine_info()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="naq-bench-pool-") as tmp, embedded_server() as srv:
        print(f"nats-server {machine['nats_server']} at {srv.url} (pid {srv.pid})", flush=True)
        rows, notes, info = asyncio.run(run(srv.url, args, Path(tmp)))
        failed_logs = (
            [f"--- {p.name}\n{log_tail(p)}" for p in sorted(Path(tmp).glob("*.log"))]
            if any(row.error for row in rows)
            else []
        )
    notes.append(load_note(load_before))
    print_table(TITLE + (" (quick)" if args.quick else ""), rows)
    for note in notes:
        print("-", note)
    for text in failed_logs:
        print(text)
    if args.quick:
        print("quick run: no result files written")
    else:
        params = {k: v for k, v in vars(args).items()} | info
        path = save_results(
            NAME,
            title=TITLE,
            command=reproduce_command("bench_pool.py", argv),
            rows=rows,
            params=params,
            notes=notes,
            machine=machine,
        )
        print(f"wrote {path.relative_to(REPO_ROOT)} and bench/RESULTS.md")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
