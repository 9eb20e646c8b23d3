"""naq latency (enqueue -> job start), worker memory, and drain scaling over worker processes.

One throwaway nats-server (:func:`bench.common.embedded_server`); all workers are separate
processes started like bench_core.py starts them (``python -m naq worker QUEUE -c C -u URL``).

1. **Latency floor, raw nats-py**: at a steady ``--rate`` (20/s) for ``--duration`` (15 s), publish
   a message carrying ``time.time()`` taken right before ``await js.publish`` to a work-queue,
   file-storage stream; a push consumer's callback (same process) takes ``time.time()`` on
   arrival. latency = arrival - publish time. Then the same with the consumer in another process
   (:mod:`bench.raw_consumer`), as naq's worker is: the floor naq's row compares with.
2. **Latency, naq**: the same pace with one long-running worker process (``-c 10``, naq's default,
   no ``--burst``). ``time.time()`` is taken right before ``await queue.enqueue(started_at)``; the
   job (``bench.common:started_at``, async) returns ``time.time()`` as its first act, read back as
   its result. latency = job start - enqueue time: enqueue's own client cost, the trip through
   JetStream, the worker's fetch, decode and dispatch.
3. **Worker RSS** (``VmRSS`` of ``/proc/<pid>/status``, the worker's own process): idle (after a
   few warm-up jobs and a short rest), then sampled every 50 ms while the same worker drains
   ``--n-drain`` (20,000) async no-op jobs enqueued in chunks of 1,000 as fast as possible (peak,
   plus the kernel's high-water mark ``VmHWM``), and after the drain.
4. **Scaling**: ``--n-drain`` pre-enqueued async no-op jobs drained by 1, 2 and 4 ``--burst -c
   100`` worker processes spawned together, timed from spawn until the last exits
   (:func:`bench.common.naq_drain`, as bench_core.py's worker rows); ratio to 1 worker.

Latency figures (p50/p99/max) and RSS are in the notes under the table; the table's rows are the
steady-pace runs (their rate shows the pace was held) and the scaling drains (last column: ratio
to the 1-worker drain).

Usage::

    .venv/bin/python bench/bench_latency.py          # writes bench/results/latency.json
    .venv/bin/python bench/bench_latency.py --quick  # smoke run (3 s, N/10), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

# Puts the repo root on sys.path, so `bench.*` imports under its real name here and in workers.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402
from nats.js import api  # noqa: E402

import naq  # noqa: E402
from bench.common import (  # noqa: E402
    REPO_ROOT,
    Row,
    embedded_server,
    guarded,
    load_note,
    log_tail,
    machine_info,
    naq_drain,
    percentile,
    print_table,
    proc_status_kb,
    reproduce_command,
    run_script,
    save_results,
    set_ratios,
    started_at,
    stop_process,
    wait_consumer_drained,
    worker_command,
    worker_env,
)
from bench.raw_consumer import consume  # noqa: E402
from bench.tasks import async_noop  # noqa: E402
from naq.names import Names  # noqa: E402
from naq.settings import Settings  # noqa: E402

NAME = "latency"
TITLE = "Latency (enqueue → start), worker RSS, scaling over worker processes"

RAW_STREAM = "RAWLAT"
RAW_SUBJECT = "rawlat.jobs"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=20.0, help="jobs per second, steady (20)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per latency run (15)")
    p.add_argument(
        "--concurrency", "-c", type=int, default=10, help="latency/RSS worker -c (10, naq default)"
    )
    p.add_argument("--n-drain", type=int, default=20000, help="jobs per RSS/scaling drain (20000)")
    p.add_argument(
        "--scale-workers", default="1,2,4", help="worker process counts to compare (1,2,4)"
    )
    p.add_argument("--scale-concurrency", type=int, default=100, help="scaling workers' -c (100)")
    p.add_argument("--chunk", type=int, default=1000, help="enqueue_many chunk size (1000)")
    p.add_argument("--warmup", type=int, default=20, help="untimed jobs/messages first (20)")
    p.add_argument(
        "--worker",
        choices=("auto", "cli", "inproc"),
        default="auto",
        help="how workers start (as bench_core.py --worker)",
    )
    p.add_argument(
        "--worker-timeout", type=float, default=600.0, help="seconds before a worker is killed"
    )
    p.add_argument("--quick", action="store_true", help="3 s runs, N/10, print only: no files")
    args = p.parse_args(argv)
    args.scale = [int(w) for w in args.scale_workers.split(",") if w.strip()]
    if args.quick:
        args.duration = min(args.duration, 3.0)
        args.n_drain = max(100, args.n_drain // 10)
        args.warmup = min(args.warmup, 5)
    return args


# -- helpers ------------------------------------------------------------------------------------


def summarize(latencies: list[float]) -> dict[str, float]:
    """p50 / p99 / max / mean of latencies in seconds, in milliseconds."""
    ordered = sorted(latencies)
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def latency_note(row: Row) -> str:
    s = row.extra
    return (
        f"{row.name}: latency p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
        f"max {s['max_ms']:.2f} ms (mean {s['mean_ms']:.2f} ms) over {row.count} jobs."
    )


async def paced(n: int, rate: float, send: Callable[[int], Awaitable[None]]) -> float:
    """Call ``send(i)`` for i < n at a steady ``rate``/s; returns the seconds it took.

    Each call is due at start + i/rate (not "sleep 1/rate after the last one"), so a slow send
    does not shift the pace of every later one.
    """
    start = time.monotonic()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def worker_process(
    mode: str, queue: str, url: str, prefix: str, concurrency: int, log_path: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A long-running naq worker process (no ``--burst``), stopped with SIGTERM afterwards.

    The command is bench_core.py's, without ``--burst``: this worker must stay up between the
    paced jobs instead of exiting when the queue is momentarily empty.
    """
    cmd, _ = worker_command(mode, queue, url, concurrency, burst=False)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=worker_env(url, prefix),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            # SIGTERM is naq's graceful stop: it finishes running jobs, then exits.
            await asyncio.to_thread(stop_process, proc, 30)


def scaling_notes(rows: list[Row]) -> list[str]:
    """Scaling rates with each row's empty-queue start+exit time subtracted, and their ratios."""
    steady = {
        row.name: row.count / (row.seconds - row.extra["empty_seconds"])
        for row in rows
        if not row.error and row.seconds > 2 * row.extra["empty_seconds"]
    }
    notes = []
    first = next(iter(steady.values()), None)
    for row in rows:
        if row.name in steady and first:
            row.extra["rate_without_startup"] = steady[row.name]
            notes.append(
                f"{row.name}: ≈ {steady[row.name]:,.0f} job/s "
                f"({steady[row.name] / first:.2f}× the first) with the same processes' "
                f"empty-queue start+exit time ({row.extra['empty_seconds']:.2f} s) subtracted."
            )
    return notes


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    kb = proc_status_kb(pid, field_name)
    if kb is None:
        raise RuntimeError(f"worker process {pid} is gone (no /proc/{pid}/status)")
    return kb / 1024


# -- the benchmark ------------------------------------------------------------------------------


async def raw_latency(js: Any, args: argparse.Namespace, n: int, url: str, apart: bool) -> Row:
    """Rows 1 and 1b: raw nats-py publish -> push-consumer callback, at the steady pace.

    The consumer (:func:`bench.raw_consumer.consume`) runs in this process, or with ``apart``
    in another one, as a naq worker does.
    """
    where = "in another process" if apart else "same process"
    stream, subject = (RAW_STREAM + "2", RAW_SUBJECT + "2") if apart else (RAW_STREAM, RAW_SUBJECT)
    row = Row(f"raw nats-py publish → push callback, {where}", n, 0.0, "msg/s")

    async def body() -> None:
        await js.add_stream(
            api.StreamConfig(
                name=stream,
                subjects=[subject],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
            )
        )
        expected = args.warmup + n

        async def send(_: int) -> None:
            await js.publish(subject, repr(time.time()).encode())

        async def sends() -> None:
            await paced(args.warmup, args.rate, send)
            row.seconds = await paced(n, args.rate, send)

        if apart:
            latencies = await _consumer_process(url, stream, subject, expected, sends)
        else:
            ready = asyncio.Event()
            consumer = asyncio.create_task(consume(url, stream, subject, expected, ready.set))
            await asyncio.wait_for(ready.wait(), 30)
            await sends()
            latencies = await asyncio.wait_for(consumer, 30)
        row.extra.update(summarize(latencies[args.warmup :]))

    return await guarded(row, body)


async def _consumer_process(
    url: str, stream: str, subject: str, expected: int, sends: Callable[[], Awaitable[None]]
) -> list[float]:
    """Run ``sends()`` against a :mod:`bench.raw_consumer` process; its latencies (s)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.raw_consumer",
        url,
        stream,
        subject,
        str(expected),
        cwd=REPO_ROOT,
        env=worker_env(url, "unused"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        if ready.strip() != b"ready":
            raise RuntimeError(f"raw consumer did not start: {ready!r}")
        await sends()
        latencies: list[float] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    return latencies


async def naq_latency(
    queue: naq.Queue, args: argparse.Namespace, n: int, worker: subprocess.Popen[bytes]
) -> Row:
    """Row 2: naq enqueue -> job start, one long-running worker process."""
    row = Row(f"naq enqueue → job start, 1 worker -c {args.concurrency}", n, 0.0, "job/s")

    async def body() -> None:
        sent: list[tuple[Any, float]] = []

        async def send(_: int) -> None:
            enqueued = time.time()
            job = await queue.enqueue(started_at)
            sent.append((job, enqueued))

        row.seconds = await paced(n, args.rate, send)
        latencies = [await job.result(timeout=30) - enqueued for job, enqueued in sent]
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with code {worker.returncode}")
        row.extra.update(summarize(latencies))

    return await guarded(row, body)


async def rss_under_load(
    js: Any,
    settings: Settings,
    queue: naq.Queue,
    args: argparse.Namespace,
    worker: subprocess.Popen[bytes],
) -> dict[str, float]:
    """The running worker's RSS while it drains ``--n-drain`` jobs enqueued as fast as possible."""
    names = Names(settings.prefix)
    samples: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(rss_mb(worker.pid))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    sampler = asyncio.create_task(sample())
    try:
        t0 = time.perf_counter()
        for start in range(0, args.n_drain, args.chunk):
            size = min(args.chunk, args.n_drain - start)
            await queue.enqueue_many([(async_noop, (), {})] * size)
        state = await wait_consumer_drained(
            js, names.jobs_stream, names.consumer(queue.name), timeout=args.worker_timeout
        )
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        await sampler
    if state.num_pending or state.num_ack_pending:
        raise RuntimeError(f"not drained: {state.num_pending} pending, {state.num_ack_pending}")
    await asyncio.sleep(2)  # let the worker settle before the "after" reading
    return {
        "load_peak_mb": max(samples),
        "load_median_mb": statistics.median(samples),
        "hwm_mb": rss_mb(worker.pid, "VmHWM"),
        "after_mb": rss_mb(worker.pid),
        "drain_seconds": seconds,
        "samples": len(samples),
    }


async def run(
    url: str, args: argparse.Namespace, workdir: Path, cores: int
) -> tuple[list[Row], list[str], dict[str, Any]]:
    prefix = "lat" + uuid.uuid4().hex[:8]
    settings = Settings(nats_url=url, prefix=prefix)
    n = max(1, round(args.rate * args.duration))
    rows: list[Row] = []
    notes: list[str] = []
    info: dict[str, Any] = {"prefix": prefix, "jobs_per_latency_run": n}

    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    try:
        # 1. The floor, before any naq worker exists to compete for the CPU: the consumer in
        # this process, then (as a naq worker is) in another one.
        raw = await raw_latency(js, args, n, url, apart=False)
        raw_apart = await raw_latency(js, args, n, url, apart=True)
        rows += [raw, raw_apart]

        # 2-3. One long-running worker: idle RSS, latency, RSS under load.
        queue = naq.Queue("latency", settings=settings)
        await queue._broker()  # the stream and consumer exist before the worker starts
        log_path = workdir / "worker-latency.log"
        rss: dict[str, float] = {}
        async with worker_process(
            args.worker, "latency", url, prefix, args.concurrency, log_path
        ) as worker:
            info["worker_pid"] = worker.pid
            try:
                # Warm-up jobs: the worker is up once one has run (imports, connect, consumer).
                warm = [await queue.enqueue(started_at) for _ in range(max(1, args.warmup))]
                for job in warm:
                    await job.result(timeout=60)
                await asyncio.sleep(2)
                rss["idle_mb"] = rss_mb(worker.pid)
                rows.append(await naq_latency(queue, args, n, worker))
                load = Row(
                    f"naq worker -c {args.concurrency} drain while enqueued (RSS run)",
                    args.n_drain,
                    0.0,
                    "job/s",
                    note="rss",
                )

                async def load_body() -> None:
                    out = await rss_under_load(js, settings, queue, args, worker)
                    load.seconds = out.pop("drain_seconds")
                    rss.update(out)

                rows.append(await guarded(load, load_body))
            except Exception:
                print(f"--- worker log\n{log_tail(log_path)}", file=sys.stderr)
                raise
        info["rss"] = rss

        # 4. Scaling over worker processes (the latency worker has stopped: nothing competes).
        one = None
        for workers in args.scale:
            row = Row(
                f"naq drain, {workers} worker process{'es' if workers > 1 else ''}"
                f" -c {args.scale_concurrency}",
                args.n_drain,
                0.0,
                "job/s",
                baseline=one,
            )
            one = one or row.name

            async def scale(row: Row = row, workers: int = workers) -> None:
                def drain(queue_name: str, count: int) -> Awaitable[dict[str, Any]]:
                    return naq_drain(
                        js,
                        settings,
                        queue_name,
                        async_noop,
                        count,
                        workdir=workdir,
                        workers=workers,
                        concurrency=args.scale_concurrency,
                        chunk=args.chunk,
                        worker_mode=args.worker,
                        timeout=args.worker_timeout,
                    )

                out = await drain(f"scale{workers}", row.count)
                row.seconds = out.pop("seconds")
                row.extra.update(out)
                # The same processes on an empty queue: their start-up + exit cost, which grows
                # with the number of processes starting at once on few cores.
                await naq.Queue(f"scale{workers}_empty", settings=settings)._broker()
                row.extra["empty_seconds"] = (await drain(f"scale{workers}_empty", 0))["seconds"]

            rows.append(await guarded(row, scale))
    finally:
        await naq.disconnect()
        await nc.close()

    set_ratios(rows)
    naq_row = rows[2] if len(rows) > 2 else None
    notes.append(
        f"Latency runs: {n} jobs at a steady {args.rate:g}/s ({args.duration:g} s) after "
        f"{args.warmup} untimed warm-up jobs; times are time.time() in the producer and the "
        "worker (same host, same clock)."
    )
    for row in (raw, raw_apart, naq_row):
        if row is not None and not row.error and "p50_ms" in row.extra:
            notes.append(latency_note(row))
    if naq_row is not None and "p50_ms" in raw_apart.extra and "p50_ms" in naq_row.extra:
        notes.append(
            f"naq's p50 is {naq_row.extra['p50_ms'] - raw_apart.extra['p50_ms']:+.2f} ms over "
            "the raw floor with the consumer in another process (which has no status/result KV "
            "writes and no job envelope). The latency rows' rate column only shows that the "
            "pace was held."
        )
    if rss:
        idle = f"{rss['idle_mb']:.1f} MB idle"
        load_text = (
            f", {rss['load_median_mb']:.1f} MB median / {rss['load_peak_mb']:.1f} MB peak while "
            f"draining {args.n_drain:,} jobs enqueued at full speed "
            f"(VmHWM {rss['hwm_mb']:.1f} MB), "
            f"{rss['after_mb']:.1f} MB 2 s after"
            if "load_peak_mb" in rss
            else ""
        )
        notes.append(f"Worker RSS (VmRSS, -c {args.concurrency}): {idle}{load_text}.")
    notes.append(
        "Scaling rows: the last column is the rate relative to 1 worker process; the machine has "
        f"{cores} cores shared by the workers, nats-server and this script. "
        "Each drain is timed from spawn to the last exit (process start-up included)."
    )
    notes += scaling_notes([row for row in rows if "empty_seconds" in row.extra])
    return rows, notes, info


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, parse_args, argv, "workers and nats-server stopped")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    machine = machine_info()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="naq-bench-latency-") as tmp, embedded_server() as srv:
        print(f"nats-server {machine['nats_server']} at {srv.url} (pid {srv.pid})", flush=True)
        rows, notes, info = asyncio.run(run(srv.url, args, Path(tmp), machine["cores"]))
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
            command=reproduce_command("bench_latency.py", argv),
            rows=rows,
            params=params,
            notes=notes,
            machine=machine,
        )
        print(f"wrote {path.relative_to(REPO_ROOT)} and bench/RESULTS.md")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
