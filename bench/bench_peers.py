"""naq against its peers RQ and arq (both on Redis), the same workloads in one run.

Each peer runs against its own throwaway server: naq against a nats-server
(:func:`bench.common.embedded_server`), RQ and arq against a ``redis-server`` started by this script
on 127.0.0.1, a free port, no persistence (``--save '' --appendonly no``), in a temp dir, stopped
afterwards (also on Ctrl-C, SIGTERM or failure). Missing pieces are installed first:
``redis-server`` with ``apt-get install -y redis-server`` (needs root; on a systemd host Debian's
package also starts a system redis on port 6379, which this script does not use), and the Python
packages ``rq``, ``arq`` and ``redis`` with pip into the running interpreter (they are also the
``bench`` extra: ``pip install -e '.[bench]'``).

Rows, per library (job functions are no-ops, so what is measured is each queue's own cost):

1. enqueue one at a time: naq ``await Queue.enqueue``, RQ ``Queue.enqueue``, arq
   ``await ArqRedis.enqueue_job``, each call finished before the next;
2. bulk enqueue in chunks of ``--chunk``: naq ``Queue.enqueue_many``, RQ ``Queue.enqueue_many``
   with a pipeline (one ``pipeline.execute()`` per chunk), arq: ``asyncio.gather`` of that many
   concurrent ``enqueue_job`` calls (arq has no batch call);
3. drain: N jobs are pre-enqueued (untimed), then one worker process is spawned and timed from
   spawn to exit, with results stored: naq ``python -m naq worker --burst -c 100``; RQ
   ``rq worker --burst --worker-class rq.SimpleWorker`` (runs jobs in the worker process)
   and, at a smaller N, the default forking ``rq.Worker`` (one fork per job); arq
   ``run_worker(..., max_jobs=100, burst=True)``. Plus each worker on an empty queue: its fixed
   start-up + exit cost.

The last column ("vs raw" in the shared table format) is here each peer row's rate divided by the
naq row of the same workload, measured in the same run: above 1× the peer is faster.

Usage::

    .venv/bin/python bench/bench_peers.py          # writes bench/results/peers.json + RESULTS.md
    .venv/bin/python bench/bench_peers.py --quick  # smoke run (N/10), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Puts the repo root on sys.path, so `bench.*` imports under its real name here and in workers.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402

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
    print_table,
    reproduce_command,
    run_script,
    run_worker,
    save_results,
    set_ratios,
    stop_process,
    worker_env,
)
from bench.tasks import async_noop, noop  # noqa: E402
from naq.server import free_port  # noqa: E402
from naq.settings import Settings  # noqa: E402

NAME = "peers"
TITLE = "Peers: naq vs RQ and arq (Redis)"

#: import name -> pip requirement (the `bench` extra in pyproject.toml lists the same three).
PEER_PACKAGES = {"rq": "rq", "arq": "arq", "redis": "redis"}

# arq calls a job function as f(ctx); bench.tasks' no-ops take no arguments, and importing this
# module in the worker would drag in naq and nats-py (start-up time and memory charged to arq).
# So the arq worker runs this self-contained program (argv: redis URL, queue, max_jobs).
ARQ_WORKER_CODE = """\
import sys
from arq.connections import RedisSettings
from arq.worker import run_worker

async def arq_noop(ctx):
    return None

class WorkerSettings:
    functions = [arq_noop]

run_worker(
    WorkerSettings,
    redis_settings=RedisSettings.from_dsn(sys.argv[1]),
    queue_name=sys.argv[2],
    max_jobs=int(sys.argv[3]),
    burst=True,
)
"""
ARQ_FUNCTION = "arq_noop"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-awaited", type=int, default=3000, help="jobs for row 1 (3000)")
    p.add_argument("--n-batch", type=int, default=20000, help="jobs for row 2 (20000)")
    p.add_argument("--chunk", type=int, default=1000, help="jobs per bulk call / gather (1000)")
    p.add_argument("--n-drain", type=int, default=20000, help="naq drain jobs (20000)")
    p.add_argument("--n-drain-arq", type=int, default=10000, help="arq drain jobs (10000)")
    p.add_argument("--n-drain-rq", type=int, default=5000, help="RQ SimpleWorker drain jobs (5000)")
    p.add_argument(
        "--n-drain-rq-fork", type=int, default=500, help="RQ forking Worker drain jobs (500)"
    )
    p.add_argument("--concurrency", "-c", type=int, default=100, help="naq -c / arq max_jobs")
    p.add_argument("--sample", type=int, default=50, help="results checked per drain (50)")
    p.add_argument("--warmup", type=int, default=200, help="untimed enqueues first (200)")
    p.add_argument(
        "--worker-timeout", type=float, default=600.0, help="seconds before a worker is killed"
    )
    p.add_argument("--quick", action="store_true", help="N/10, print only: write no result files")
    args = p.parse_args(argv)
    if args.quick:
        for name in ("n_awaited", "n_batch", "n_drain", "n_drain_arq", "n_drain_rq"):
            setattr(args, name, max(100, getattr(args, name) // 10))
        args.n_drain_rq_fork = max(20, args.n_drain_rq_fork // 10)
        args.warmup = min(args.warmup, 50)
    return args


# -- installing and running the peers' pieces ------------------------------------------------


def ensure_redis_server() -> str:
    """Path of ``redis-server``; installs Debian's package first if it is missing (root only)."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError(
            "redis-server is not installed; run `sudo apt-get install -y redis-server` first"
        )
    print("redis-server missing: apt-get install -y redis-server", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "redis-server"]
    if subprocess.run(install, env=env, stdin=subprocess.DEVNULL).returncode != 0:
        # A fresh container often has no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, stdin=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdin=subprocess.DEVNULL, check=True)
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if not found:
        raise RuntimeError("apt-get installed redis-server but no redis-server binary was found")
    return found


def ensure_python_packages() -> None:
    """pip-install rq, arq and redis into the running interpreter if any is missing."""
    missing = [req for mod, req in PEER_PACKAGES.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return
    print(f"pip install {' '.join(missing)} (into {sys.prefix})", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    importlib.invalidate_caches()


def redis_version(binary: str) -> str:
    """``7.0.15`` from ``redis-server --version`` (``Redis server v=7.0.15 sha=...``)."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip() or "unknown"


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(binary: str, timeout: float = 15.0) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 and a free port; yields its ``redis://`` URL.

    No RDB snapshots and no AOF (nothing is written but the log), everything in a temp dir that is
    removed afterwards; the server is stopped (SIGTERM, then SIGKILL) however the block exits.
    """
    with tempfile.TemporaryDirectory(prefix="naq-bench-redis-") as tmp:
        port = free_port()
        log = Path(tmp) / "redis.log"
        cmd = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", tmp,
            "--logfile", str(log),
            "--daemonize", "no",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout
            while not _redis_pong(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {log_tail(log, 10)}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc)


def chunks(n: int, size: int) -> list[int]:
    """Sizes of the chunks that make up ``n`` items, ``size`` at most each."""
    return [min(size, n - start) for start in range(0, n, size)]


# -- naq ----------------------------------------------------------------------------------------


async def run_naq(url: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    """naq's rows (the baselines of this table) against the nats-server at ``url``."""
    settings = Settings(nats_url=url, prefix="peers" + uuid.uuid4().hex[:8])
    rows: list[Row] = []
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    try:
        r1 = Row("naq Queue.enqueue, awaited", args.n_awaited, 0.0, "job/s")

        async def b1() -> None:
            queue = naq.Queue("peers_enqueue", settings=settings)
            for _ in range(args.warmup):
                await queue.enqueue(async_noop)
            t0 = time.perf_counter()
            for _ in range(args.n_awaited):
                await queue.enqueue(async_noop)
            r1.seconds = time.perf_counter() - t0

        rows.append(await guarded(r1, b1))

        r2 = Row(f"naq Queue.enqueue_many, {args.chunk}/call", args.n_batch, 0.0, "job/s")

        async def b2() -> None:
            queue = naq.Queue("peers_enqueue_many", settings=settings)
            await queue.enqueue_many([(async_noop, (), {})] * min(args.warmup, args.chunk))
            t0 = time.perf_counter()
            done = 0
            for size in chunks(args.n_batch, args.chunk):
                done += len(await queue.enqueue_many([(async_noop, (), {})] * size))
            r2.seconds = time.perf_counter() - t0
            if done != args.n_batch:
                raise RuntimeError(f"enqueue_many returned {done} jobs, expected {args.n_batch}")

        rows.append(await guarded(r2, b2))

        c = args.concurrency
        for kind, func in (("async", async_noop), ("sync", noop)):
            row = Row(f"naq worker -c {c}, {kind} no-op drain", args.n_drain, 0.0, "job/s")
            row.extra["empty_row"] = f"naq worker -c {c}, empty queue"

            async def drain(row: Row = row, kind: str = kind, func: Any = func) -> None:
                out = await naq_drain(
                    js,
                    settings,
                    f"peers_drain_{kind}",
                    func,
                    row.count,
                    workdir=workdir,
                    concurrency=c,
                    chunk=args.chunk,
                    timeout=args.worker_timeout,
                    sample=args.sample,
                )
                row.seconds = out.pop("seconds")
                row.extra.update(out)

            rows.append(await guarded(row, drain))

        empty = Row(f"naq worker -c {c}, empty queue", 0, 0.0, "job/s", note="overhead")

        async def drain_empty() -> None:
            await naq.Queue("peers_drain_empty", settings=settings)._broker()  # stream must exist
            out = await naq_drain(
                js, settings, "peers_drain_empty", async_noop, 0, workdir=workdir, concurrency=c
            )
            empty.seconds = out.pop("seconds")

        rows.append(await guarded(empty, drain_empty))
    finally:
        await naq.disconnect()
        await nc.close()
    return rows


# -- RQ -----------------------------------------------------------------------------------------


async def run_rq(redis_url: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    """RQ's rows. RQ is synchronous: its calls block this event loop, which has nothing else to do
    (no NATS connection is open while they run)."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job, JobStatus

    conn = Redis.from_url(redis_url)
    rows: list[Row] = []
    try:
        r1 = Row(
            "RQ Queue.enqueue", args.n_awaited, 0.0, "job/s", baseline="naq Queue.enqueue, awaited"
        )

        async def b1() -> None:
            queue = Queue("rq_enqueue", connection=conn)
            for _ in range(args.warmup):
                queue.enqueue(noop)
            t0 = time.perf_counter()
            for _ in range(args.n_awaited):
                queue.enqueue(noop)
            r1.seconds = time.perf_counter() - t0

        rows.append(await guarded(r1, b1))

        r2 = Row(
            f"RQ Queue.enqueue_many + pipeline, {args.chunk}/call",
            args.n_batch,
            0.0,
            "job/s",
            baseline=f"naq Queue.enqueue_many, {args.chunk}/call",
        )

        def enqueue_many(queue: Any, size: int) -> list[Any]:
            with conn.pipeline() as pipe:
                jobs = queue.enqueue_many(
                    [Queue.prepare_data(noop) for _ in range(size)], pipeline=pipe
                )
                pipe.execute()
            return jobs

        async def b2() -> None:
            queue = Queue("rq_enqueue_many", connection=conn)
            enqueue_many(queue, min(args.warmup, args.chunk))
            t0 = time.perf_counter()
            done = sum(len(enqueue_many(queue, size)) for size in chunks(args.n_batch, args.chunk))
            r2.seconds = time.perf_counter() - t0
            if done != args.n_batch or len(queue) < args.n_batch:
                raise RuntimeError(
                    f"{done} jobs returned, {len(queue)} queued; expected {args.n_batch}"
                )

        rows.append(await guarded(r2, b2))

        env = worker_env(redis_url, "unused")

        async def drain(row: Row, queue_name: str, worker_class: str | None) -> None:
            queue = Queue(queue_name, connection=conn)
            ids: list[str] = []
            for size in chunks(row.count, args.chunk):
                ids += [job.id for job in enqueue_many(queue, size)]
            cmd = [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--burst",
                "--quiet",
                "--url",
                redis_url,
            ]
            if worker_class:
                cmd += ["--worker-class", worker_class]
            cmd.append(queue_name)
            row.extra["worker_command"] = " ".join(cmd[1:])
            log = workdir / f"rq-{queue_name}.log"
            row.seconds, rc = await run_worker(cmd, env, log, args.worker_timeout)
            if rc != 0:
                raise RuntimeError(f"rq worker exited with code {rc}: {log_tail(log, 5)}")
            if len(queue):
                raise RuntimeError(f"rq worker exited with {len(queue)} jobs still queued")
            for job_id in random.sample(ids, min(args.sample, len(ids))):
                job = Job.fetch(job_id, connection=conn)
                result = job.latest_result()
                if job.get_status() != JobStatus.FINISHED or result is None:
                    raise RuntimeError(f"job {job_id}: status {job.get_status()}, result {result}")
            row.extra["results_checked"] = min(args.sample, len(ids))

        naq_sync = f"naq worker -c {args.concurrency}, sync no-op drain"
        simple_empty = "RQ SimpleWorker --burst, empty queue"
        # (row name, jobs, queue, worker class, baseline row, empty-queue row)
        for name, count, qname, cls, base, empty_row in (
            ("RQ SimpleWorker --burst, no-op drain", args.n_drain_rq, "rq_drain_simple",
             "rq.SimpleWorker", naq_sync, simple_empty),
            ("RQ Worker (forking) --burst, no-op drain", args.n_drain_rq_fork, "rq_drain_fork",
             "rq.Worker", naq_sync, None),
            (simple_empty, 0, "rq_drain_empty", "rq.SimpleWorker", None, None),
        ):  # fmt: skip
            row = Row(name, count, 0.0, "job/s", baseline=base, note="" if count else "overhead")
            if empty_row:
                row.extra["empty_row"] = empty_row
            rows.append(
                await guarded(row, lambda row=row, qname=qname, cls=cls: drain(row, qname, cls))
            )
    finally:
        conn.close()
    return rows


# -- arq ----------------------------------------------------------------------------------------


async def run_arq(redis_url: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    """arq's rows (async, like naq)."""
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.jobs import JobStatus

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    rows: list[Row] = []
    try:
        r1 = Row(
            "arq enqueue_job, awaited",
            args.n_awaited,
            0.0,
            "job/s",
            baseline="naq Queue.enqueue, awaited",
        )

        async def b1() -> None:
            for _ in range(args.warmup):
                await pool.enqueue_job(ARQ_FUNCTION, _queue_name="arq_enqueue")
            t0 = time.perf_counter()
            for _ in range(args.n_awaited):
                await pool.enqueue_job(ARQ_FUNCTION, _queue_name="arq_enqueue")
            r1.seconds = time.perf_counter() - t0

        rows.append(await guarded(r1, b1))

        async def gather_enqueue(queue_name: str, size: int) -> list[Any]:
            jobs = await asyncio.gather(
                *(pool.enqueue_job(ARQ_FUNCTION, _queue_name=queue_name) for _ in range(size))
            )
            if any(job is None for job in jobs):  # None: a job with that id already existed
                raise RuntimeError("enqueue_job returned None")
            return jobs

        r2 = Row(
            f"arq enqueue_job x gather, {args.chunk} at once",
            args.n_batch,
            0.0,
            "job/s",
            baseline=f"naq Queue.enqueue_many, {args.chunk}/call",
        )

        async def b2() -> None:
            await gather_enqueue("arq_enqueue_many", min(args.warmup, args.chunk))
            t0 = time.perf_counter()
            for size in chunks(args.n_batch, args.chunk):
                await gather_enqueue("arq_enqueue_many", size)
            r2.seconds = time.perf_counter() - t0

        rows.append(await guarded(r2, b2))

        env = worker_env(redis_url, "unused")
        max_jobs = args.concurrency

        async def drain(row: Row, queue_name: str) -> None:
            jobs: list[Any] = []
            for size in chunks(row.count, args.chunk):
                jobs += await gather_enqueue(queue_name, size)
            cmd = [sys.executable, "-c", ARQ_WORKER_CODE, redis_url, queue_name, str(max_jobs)]
            row.extra["worker_command"] = (
                f"python -c <arq.worker.run_worker(max_jobs={max_jobs}, burst=True)>"
            )
            log = workdir / f"arq-{queue_name}.log"
            row.seconds, rc = await run_worker(cmd, env, log, args.worker_timeout)
            if rc != 0:
                raise RuntimeError(f"arq worker exited with code {rc}: {log_tail(log, 5)}")
            left = await pool.zcard(queue_name)
            if left:
                raise RuntimeError(f"arq worker exited with {left} jobs still queued")
            for job in random.sample(jobs, min(args.sample, len(jobs))):
                status = await job.status()
                info = await job.result_info()
                if status != JobStatus.complete or info is None or not info.success:
                    raise RuntimeError(f"job {job.job_id}: status {status}, result {info}")
            row.extra["results_checked"] = min(args.sample, len(jobs))

        empty_name = f"arq worker max_jobs={max_jobs} burst, empty queue"
        drain_row = Row(
            f"arq worker max_jobs={max_jobs} burst, no-op drain",
            args.n_drain_arq,
            0.0,
            "job/s",
            baseline=f"naq worker -c {args.concurrency}, async no-op drain",
            extra={"empty_row": empty_name},
        )
        rows.append(await guarded(drain_row, lambda: drain(drain_row, "arq_drain")))
        empty = Row(empty_name, 0, 0.0, "job/s", note="overhead")
        rows.append(await guarded(empty, lambda: drain(empty, "arq_drain_empty")))
    finally:
        await pool.aclose()
    return rows


# -- main ---------------------------------------------------------------------------------------


def steady_notes(rows: list[Row]) -> list[str]:
    """Drain rates with the same worker's empty-queue start+exit time subtracted, where meaningful.

    A drain row names its empty-queue row in ``extra["empty_row"]``.
    """
    by_name = {row.name: row for row in rows}
    notes = []
    for row in rows:
        empty = by_name.get(row.extra.get("empty_row", ""))
        # Only meaningful when the jobs, not the process's fixed cost, dominate the time.
        if empty is None or row.error or empty.error or row.seconds <= 2 * empty.seconds:
            continue
        steady = row.count / (row.seconds - empty.seconds)
        row.extra["rate_without_startup"] = steady
        notes.append(
            f"{row.name}: ≈ {steady:,.0f} job/s with its empty-queue start+exit time "
            f"({empty.seconds:.2f} s) subtracted."
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, parse_args, argv, "workers, redis-server and nats-server stopped")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    redis_binary = ensure_redis_server()
    ensure_python_packages()
    machine = machine_info()
    versions = {
        "redis_server": redis_version(redis_binary),
        "rq": importlib.metadata.version("rq"),
        "arq": importlib.metadata.version("arq"),
        "redis_py": importlib.metadata.version("redis"),
    }
    machine.update(versions)
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="naq-bench-peers-") as tmp:
        workdir = Path(tmp)
        with embedded_server() as server:
            print(f"nats-server {machine['nats_server']} at {server.url}", flush=True)
            rows += asyncio.run(run_naq(server.url, args, workdir))
        with redis_server(redis_binary) as redis_url:
            print(f"redis-server {versions['redis_server']} at {redis_url}", flush=True)
            rows += asyncio.run(run_rq(redis_url, args, workdir))
            rows += asyncio.run(run_arq(redis_url, args, workdir))
        failed_logs = (
            [f"--- {p.name}\n{log_tail(p)}" for p in sorted(workdir.glob("*.log"))]
            if any(row.error for row in rows)
            else []
        )
    set_ratios(rows)
    notes = [
        "The last column is this row's rate / the naq row of the same workload, measured in the "
        "same run (naq on nats-server, the peers on redis-server, same machine): above 1× the "
        "peer is faster.",
        f"Versions: rq {versions['rq']}, arq {versions['arq']}, redis-py {versions['redis_py']}, "
        f"redis-server {versions['redis_server']} (no persistence: --save '' --appendonly no); "
        "naq's nats-server keeps its file store (JetStream file storage, default fsync).",
        f"Drain N differs per library so the script stays under 2 minutes: naq {args.n_drain:,}, "
        f"arq {args.n_drain_arq:,}, RQ SimpleWorker {args.n_drain_rq:,}, RQ forking Worker "
        f"{args.n_drain_rq_fork:,}; rates, not times, are comparable.",
        "Worker rows are timed from spawning the process to its exit (interpreter start, imports, "
        "connect, burst-mode idle detection included), results stored by every library (naq: "
        "result KV; RQ: default result_ttl 500 s; arq: keep_result 3600 s). RQ runs with "
        "--quiet and arq without log handlers, since naq logs nothing per successful job.",
        "RQ and naq sync rows run the sync no-op (RQ runs jobs one at a time); arq and naq async "
        "rows run an async no-op. arq's worker polls Redis every poll_delay (0.5 s default, kept).",
    ]
    notes += steady_notes(rows)
    notes.append(load_note(load_before))
    print_table(TITLE + (" (quick)" if args.quick else ""), rows)
    for note in notes:
        print("-", note)
    for text in failed_logs:
        print(text)
    if args.quick:
        print("quick run: no result files written")
    else:
        path = save_results(
            NAME,
            title=TITLE,
            command=reproduce_command("bench_peers.py", argv),
            rows=rows,
            params=vars(args) | versions,
            notes=notes,
            machine=machine,
        )
        print(f"wrote {path.relative_to(REPO_ROOT)} and bench/RESULTS.md")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
