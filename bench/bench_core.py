"""naq's core paths against raw nats-py, in one run against one throwaway nats-server.

Rows (see bench/README.md for what each one includes):

1. raw nats-py ``await js.publish`` one at a time                       (baseline for 2)
2. naq ``await Queue.enqueue`` one at a time                            vs 1
3. raw nats-py ``js.publish_async`` N times, then wait for every ack     (baseline for 4)
   3b. raw lean publish: ``nc.publish`` with one reply subject and a callback counting acks
4. naq ``Queue.enqueue_many`` in chunks                                  vs 3 (and 3b, in notes)
5. raw nats-py pull consumer: ``fetch(100)`` + ``ack`` until drained      (baseline for 6)
   5b. raw lean pull loop: pull requests sent by hand, messages acked in the callback
   5c. the same loop making a naq worker's per-job writes (result create, status, outcome, ack)
6. one naq worker process (``--burst -c 100``) draining pre-enqueued no-op jobs, async then
   sync, timed from process start to exit                       vs 5 (and 5b, 5c in notes)
   plus the same worker on an empty queue: its start-up + shut-down cost.
7. the same drains with ``-c 1`` (one job at a time)             vs 5
   plus a raw ``fetch(1)`` + ``ack`` drain, the same pace without naq (in the notes)
8. ``--rounds`` (3) paired rounds after the table, each raw run straight before naq's: 1 vs 2,
   3 vs 4, and 5 and 5c vs 6 (async, first start to last end); the notes give each ratio and
   their median, steadier on a shared machine than one pair's
9. in the same rounds, the async drain with metrics on (reported every second) against the same
   drain with metrics off (``NAQ_METRICS_INTERVAL=0``), the two in turn first: the metrics' cost

Usage::

    .venv/bin/python bench/bench_core.py            # full run, writes bench/results/core.json
    .venv/bin/python bench/bench_core.py --quick    # smoke run (N/10), writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# common puts the repo root on sys.path, so `bench.tasks` imports under its real name.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats  # noqa: E402
from nats.js import api  # noqa: E402

import naq  # noqa: E402
from bench.common import (  # noqa: E402
    REPO_ROOT,
    Row,
    cpu_seconds,
    embedded_server,
    guarded,
    log_tail,
    machine_info,
    naq_drain,
    print_table,
    reproduce_command,
    run_script,
    save_results,
    set_ratios,
    wait_consumer_drained,
)
from bench.lean_drain import NaqWrites, lean_ack_drain, lean_naq_writes_drain  # noqa: E402
from bench.tasks import async_noop, noop  # noqa: E402
from naq.broker import Broker  # noqa: E402
from naq.settings import Settings  # noqa: E402

RAW_STREAM = "RAWBENCH"
RAW_SUBJECTS = "rawbench.>"

R_PUB = "raw js.publish, awaited"
N_PUB = "naq Queue.enqueue, awaited"
R_PUB_ASYNC = "raw js.publish_async, all acks"
N_ENQ_MANY = "naq Queue.enqueue_many, {chunk}/call"
R_LEAN_PUB = "raw lean publish: one reply subject, counting callback"
R_DRAIN = "raw drain, fetch({batch}) + ack"
R_LEAN_DRAIN = "raw lean pull loop: hand-sent requests of {batch}, callback + ack"
R_LEAN_NAQ = "raw lean pull loop making naq's writes: result create, status, outcome, ack"
N_DRAIN = "naq worker -c {c}, {kind} no-op"
N_EMPTY = "naq worker -c {c}, empty queue"
#: The worker settings of the metrics' cost pair: reports every second (more often than
#: the default 5 s, so that some go out during a drain), and metrics off.
METRICS_ON = {"NAQ_METRICS_INTERVAL": "1"}
METRICS_OFF = {"NAQ_METRICS_INTERVAL": "0"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n-awaited", type=int, default=3000, help="messages/jobs for rows 1-2 (3000)")
    p.add_argument("--n-batch", type=int, default=20000, help="messages/jobs for rows 3-4 (20000)")
    p.add_argument("--chunk", type=int, default=1000, help="enqueue_many chunk size (1000)")
    p.add_argument("--n-drain", type=int, default=20000, help="messages/jobs for rows 5-6 (20000)")
    p.add_argument("--fetch-batch", type=int, default=100, help="raw fetch batch size (100)")
    p.add_argument("--concurrency", "-c", type=int, default=100, help="worker concurrency (100)")
    p.add_argument(
        "--concurrency-one", type=int, default=1, help="the low-concurrency drain rows' -c (1)"
    )
    p.add_argument(
        "--worker",
        choices=("auto", "cli", "inproc"),
        default="auto",
        help="how to start the worker: `python -m naq worker` (cli), naq.Worker(...).run_sync() "
        "via `python -c` (inproc), or cli when naq has a __main__ (auto, the default)",
    )
    p.add_argument("--sample", type=int, default=50, help="results to check per drain run (50)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="paired raw/naq rounds of enqueue_many and the async drain after the table (3)",
    )
    p.add_argument("--warmup", type=int, default=200, help="untimed publishes/enqueues first (200)")
    p.add_argument(
        "--worker-timeout", type=float, default=600.0, help="seconds before a worker is killed"
    )
    p.add_argument("--quick", action="store_true", help="N/10, print only: write no result files")
    args = p.parse_args(argv)
    if args.quick:
        for name in ("n_awaited", "n_batch", "n_drain"):
            setattr(args, name, max(100, getattr(args, name) // 10))
        args.warmup = min(args.warmup, 50)
        args.rounds = min(args.rounds, 1)
    return args


# -- helpers ------------------------------------------------------------------------------------


# -- the benchmark ----------------------------------------------------------------------------


async def run(
    url: str, args: argparse.Namespace, workdir: Path, server_pid: int | None
) -> tuple[list[Row], list[str], dict[str, Any]]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    settings = Settings(nats_url=url, prefix=prefix)
    rows: list[Row] = []
    notes: list[str] = []
    info: dict[str, Any] = {"prefix": prefix}

    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    # Shaped like naq's jobs stream (work queue, file store, DiscardNew): only the client differs.
    await js.add_stream(
        api.StreamConfig(
            name=RAW_STREAM,
            subjects=[RAW_SUBJECTS],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.NEW,
        )
    )
    enqueue_q = naq.Queue("bench_enqueue", settings=settings)
    # The raw rows publish a payload the size of a real naq job envelope.
    payload = enqueue_q.make_job(async_noop).serialize()
    info["payload_bytes"] = len(payload)

    try:
        # 1. raw awaited publish
        r1 = Row(R_PUB, args.n_awaited, 0.0, "msg/s")

        async def publish_seconds() -> float:
            for _ in range(args.warmup):
                await js.publish("rawbench.warmup", payload)
            t0 = time.perf_counter()
            for _ in range(args.n_awaited):
                await js.publish("rawbench.pub", payload)
            return time.perf_counter() - t0

        async def b1() -> None:
            r1.seconds = await publish_seconds()

        rows.append(await guarded(r1, b1))

        # 2. naq awaited enqueue
        r2 = Row(N_PUB, args.n_awaited, 0.0, "job/s", baseline=R_PUB)

        async def enqueue_seconds() -> float:
            for _ in range(args.warmup):
                await enqueue_q.enqueue(async_noop)
            t0 = time.perf_counter()
            for _ in range(args.n_awaited):
                await enqueue_q.enqueue(async_noop)
            return time.perf_counter() - t0

        async def b2() -> None:
            r2.seconds = await enqueue_seconds()

        rows.append(await guarded(r2, b2))

        # 3. raw publish_async + wait for every ack
        r3 = Row(R_PUB_ASYNC, args.n_batch, 0.0, "msg/s")

        async def publish_async_seconds() -> float:
            warm = [await js.publish_async("rawbench.warmup", payload) for _ in range(args.warmup)]
            await asyncio.gather(*warm)
            t0 = time.perf_counter()
            futures = [
                await js.publish_async("rawbench.pubasync", payload) for _ in range(args.n_batch)
            ]
            await js.publish_async_completed()
            seconds = time.perf_counter() - t0
            failed = sum(1 for f in futures if f.exception() is not None)
            if failed:
                raise RuntimeError(f"{failed} of {len(futures)} publishes failed")
            return seconds

        async def b3() -> None:
            r3.seconds = await publish_async_seconds()

        rows.append(await guarded(r3, b3))

        # 3b. raw lean pipelined publish: what the Python client can do without publish_async
        r3b = Row(R_LEAN_PUB, args.n_batch, 0.0, "msg/s")

        async def b3b() -> None:
            inbox = nc.new_inbox()
            acked = asyncio.Event()
            counts = {"acks": 0, "errors": 0}

            async def on_ack(msg: Any) -> None:
                counts["acks"] += 1
                if not msg.data or b'"error"' in msg.data:
                    counts["errors"] += 1
                if counts["acks"] >= args.n_batch:
                    acked.set()

            sub = await nc.subscribe(inbox + ".*", cb=on_ack)
            t0 = time.perf_counter()
            for i in range(args.n_batch):
                await nc.publish("rawbench.lean", payload, reply=f"{inbox}.{i}")
            await asyncio.wait_for(acked.wait(), 60)
            r3b.seconds = time.perf_counter() - t0
            await sub.unsubscribe()
            if counts["errors"]:
                raise RuntimeError(f"{counts['errors']} of {args.n_batch} publishes failed")

        rows.append(await guarded(r3b, b3b))

        # 4. naq enqueue_many in chunks
        r4 = Row(
            N_ENQ_MANY.format(chunk=args.chunk), args.n_batch, 0.0, "job/s", baseline=R_PUB_ASYNC
        )

        async def enqueue_many_seconds() -> float:
            many_q = naq.Queue("bench_enqueue_many", settings=settings)
            await many_q.enqueue_many([(async_noop, (), {})] * min(args.warmup, args.chunk))
            chunks: list[list[tuple[Any, ...]]] = [
                [(async_noop, (), {})] * min(args.chunk, args.n_batch - start)
                for start in range(0, args.n_batch, args.chunk)
            ]
            t0 = time.perf_counter()
            done = 0
            for calls in chunks:
                done += len(await many_q.enqueue_many(calls))
            seconds = time.perf_counter() - t0
            if done != args.n_batch:
                raise RuntimeError(f"enqueue_many returned {done} jobs, expected {args.n_batch}")
            return seconds

        async def b4() -> None:
            r4.seconds = await enqueue_many_seconds()

        rows.append(await guarded(r4, b4))

        # 5. raw drain: one pull consumer, fetch + ack until empty
        r5 = Row(R_DRAIN.format(batch=args.fetch_batch), args.n_drain, 0.0, "msg/s")

        async def prepublish(subject: str) -> None:
            """The raw drains' messages, published untimed."""
            futures = [await js.publish_async(subject, payload) for _ in range(args.n_drain)]
            await js.publish_async_completed()
            if any(f.exception() is not None for f in futures):
                raise RuntimeError("pre-publishing failed")

        async def fetch_drain_seconds(tag: str = "", batch: int = args.fetch_batch) -> float:
            subject, durable = f"rawbench.drain{tag}", f"rawdrain{tag}"
            await prepublish(subject)
            t0 = time.perf_counter()
            psub = await js.pull_subscribe(
                subject,
                durable=durable,
                stream=RAW_STREAM,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.EXPLICIT, max_ack_pending=args.n_drain, ack_wait=30.0
                ),
            )
            received = 0
            while received < args.n_drain:
                msgs = await psub.fetch(batch, timeout=5)
                for msg in msgs:
                    await msg.ack()
                received += len(msgs)
            await nc.flush()
            seconds = time.perf_counter() - t0
            state = await wait_consumer_drained(js, RAW_STREAM, durable)
            await psub.unsubscribe()
            if state.num_pending or state.num_ack_pending:
                raise RuntimeError(
                    f"not drained: {state.num_pending} pending, {state.num_ack_pending} unacked"
                )
            return seconds

        async def b5() -> None:
            r5.seconds = await fetch_drain_seconds()

        rows.append(await guarded(r5, b5))

        # 5b. raw lean pull loop: pull requests sent by hand, replies in a callback, acked there
        r5b = Row(R_LEAN_DRAIN.format(batch=args.fetch_batch), args.n_drain, 0.0, "msg/s")

        async def b5b() -> None:
            subject = "rawbench.leandrain"
            await prepublish(subject)
            await js.add_consumer(
                RAW_STREAM,
                api.ConsumerConfig(
                    durable_name="leandrain",
                    filter_subject=subject,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    max_ack_pending=args.n_drain,
                    ack_wait=30.0,
                ),
            )
            r5b.seconds = await lean_ack_drain(
                nc, RAW_STREAM, "leandrain", batch=args.fetch_batch, n=args.n_drain
            )
            left = await wait_consumer_drained(js, RAW_STREAM, "leandrain")
            if left.num_pending or left.num_ack_pending:
                raise RuntimeError(
                    f"not drained: {left.num_pending} pending, {left.num_ack_pending} unacked"
                )

        rows.append(await guarded(r5b, b5b))

        # 5c. the lean pull loop making naq's per-job writes, on naq's own jobs and buckets
        def server_cpu_seconds() -> float | None:
            return cpu_seconds(server_pid) if server_pid is not None else None

        r5c = Row(R_LEAN_NAQ, args.n_drain, 0.0, "job/s")
        broker = await Broker.connect(settings)

        async def lean_naq_seconds(queue_name: str) -> float:
            """Enqueue n no-op jobs with naq (untimed), then drain them with the lean loop."""
            queue = naq.Queue(queue_name, settings=settings)
            jobs: list[Any] = []
            for start in range(0, args.n_drain, args.chunk):
                jobs += await queue.enqueue_many(
                    [(async_noop, (), {})] * min(args.chunk, args.n_drain - start)
                )
            writes = NaqWrites.of(broker, queue.make_job(async_noop).serialize())
            info["naq_write_bytes"] = writes.sizes()
            # The consumer naq's workers of this queue would share, created as naq does.
            consumer = await broker.ensure_consumer(queue_name)
            await broker.status_kv()
            await broker.results_kv()
            await broker.ensure_outcomes_stream()
            server_cpu, own_cpu = server_cpu_seconds(), time.process_time()
            seconds = await lean_naq_writes_drain(
                nc,
                broker.names.jobs_stream,
                consumer,
                writes,
                batch=args.fetch_batch,
                n=args.n_drain,
            )
            server_after = server_cpu_seconds()
            # Which side the loop waits on: nats-server's cores busy, or this process's.
            info.setdefault("lean_naq_writes_cores", []).append(
                {
                    "nats_server": (server_after - server_cpu) / seconds
                    if server_after is not None and server_cpu is not None
                    else None,
                    "client": (time.process_time() - own_cpu) / seconds,
                }
            )
            left = await wait_consumer_drained(js, broker.names.jobs_stream, consumer)
            if left.num_pending or left.num_ack_pending:
                raise RuntimeError(
                    f"not drained: {left.num_pending} pending, {left.num_ack_pending} unacked"
                )
            for job in random.sample(jobs, min(args.sample, len(jobs))):
                stored = await naq.get_job(job.job_id, settings=settings)
                if stored.status != "completed":
                    raise RuntimeError(f"job {job.job_id}: {stored.status}, expected completed")
            return seconds

        async def b5c() -> None:
            # As long a name as the naq drain's queue: the records are as long as its.
            r5c.seconds = await lean_naq_seconds("drain_lean1")

        rows.append(await guarded(r5c, b5c))

        # 6. naq worker process draining pre-enqueued jobs
        mode_used = args.worker

        async def drain(
            row: Row,
            queue_name: str,
            func: Callable[..., Any] | None,
            n: int,
            concurrency: int = args.concurrency,
            env: dict[str, str] | None = None,
        ) -> None:
            nonlocal mode_used
            out = await naq_drain(
                js,
                settings,
                queue_name,
                func,
                n,
                workdir=workdir,
                concurrency=concurrency,
                chunk=args.chunk,
                worker_mode=args.worker,
                timeout=args.worker_timeout,
                sample=args.sample,
                env=env,
            )
            row.seconds, mode_used = out["seconds"], out["worker_mode"]
            row.extra["cpu_seconds"] = out["cpu_seconds"]
            row.extra["worker_mode"] = mode_used
            row.extra["worker_command"] = out["worker_command"]
            row.extra["results_checked"] = min(args.sample, n)
            if n and out["busy_seconds"]:
                row.extra["busy_seconds"] = out["busy_seconds"]
                row.extra["busy_rate"] = n / out["busy_seconds"]

        c = args.concurrency
        r6a = Row(N_DRAIN.format(c=c, kind="async"), args.n_drain, 0.0, "job/s", baseline=r5.name)
        rows.append(await guarded(r6a, lambda: drain(r6a, "drain_async", async_noop, args.n_drain)))
        r6b = Row(N_DRAIN.format(c=c, kind="sync"), args.n_drain, 0.0, "job/s", baseline=r5.name)
        rows.append(await guarded(r6b, lambda: drain(r6b, "drain_sync", noop, args.n_drain)))
        r6c = Row(N_EMPTY.format(c=c), 0, 0.0, "job/s", note="overhead")
        rows.append(await guarded(r6c, lambda: drain(r6c, "drain_empty", None, 0)))
        # One job at a time: every job waits for the one before it to end.
        one = args.concurrency_one
        # The raw drain at the same one-at-a-time pace, for the notes: with one message per
        # pull, nats-server's own cost per message grows with the queue's length.
        r7raw = Row(R_DRAIN.format(batch=one), args.n_drain, 0.0, "msg/s")

        async def b7raw() -> None:
            r7raw.seconds = await fetch_drain_seconds("_one", one)

        rows.append(await guarded(r7raw, b7raw))
        r7a = Row(N_DRAIN.format(c=one, kind="async"), args.n_drain, 0.0, "job/s", baseline=r5.name)
        rows.append(
            await guarded(r7a, lambda: drain(r7a, "drain1_async", async_noop, args.n_drain, one))
        )
        r7b = Row(N_DRAIN.format(c=one, kind="sync"), args.n_drain, 0.0, "job/s", baseline=r5.name)
        rows.append(await guarded(r7b, lambda: drain(r7b, "drain1_sync", noop, args.n_drain, one)))
        info["worker_mode"] = mode_used

        # Paired rounds: each raw run straight before naq's, so both meet the same phase of a
        # shared machine; the median ratio is steadier than one pair's.
        # The lean loop with naq's writes joins them when it could run (naq has its writes).
        rounds: dict[str, list[float]] = {
            "enqueue": [],
            "enqueue_many": [],
            "drain_async": [],
            "drain_async_lean": [],
            "metrics_cost": [],
            "metrics_cpu": [],
        }
        rates: list[dict[str, float]] = []
        for index in range(args.rounds):
            raw_seconds = await publish_seconds()
            rounds["enqueue"].append(raw_seconds / await enqueue_seconds())
            raw_seconds = await publish_async_seconds()
            rounds["enqueue_many"].append(raw_seconds / await enqueue_many_seconds())
            rate = {"raw_drain": args.n_drain / await fetch_drain_seconds(f"_round{index}")}
            if r5c.error is None:
                # As long a queue name as the naq drain's below.
                rate["lean_naq_writes"] = args.n_drain / await lean_naq_seconds(f"lean_{index}")
            drained = Row(N_DRAIN.format(c=args.concurrency, kind="async"), args.n_drain, 0.0, "")
            await drain(drained, f"round{index}", async_noop, args.n_drain)
            if "busy_rate" in drained.extra:
                rate["naq_drain_async"] = drained.extra["busy_rate"]
                rounds["drain_async"].append(rate["naq_drain_async"] / rate["raw_drain"])
                if "lean_naq_writes" in rate:
                    rounds["drain_async_lean"].append(
                        rate["naq_drain_async"] / rate["lean_naq_writes"]
                    )
            # The metrics' cost: the same drain with metrics on and off, in the order on, off,
            # off, on (then off, on, on, off the next round), so that a machine growing busier
            # or quieter through the round weighs on both alike.
            metered: dict[str, list[float]] = {"on": [], "off": []}
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            order = ["on", "off", "off", "on"] if index % 2 == 0 else ["off", "on", "on", "off"]
            for turn, label in enumerate(order):
                run_row = Row(
                    N_DRAIN.format(c=args.concurrency, kind="async"), args.n_drain, 0.0, ""
                )
                env = METRICS_ON if label == "on" else METRICS_OFF
                # As long a queue name as the other drains'.
                await drain(run_row, f"met{turn}{index}", async_noop, args.n_drain, env=env)
                if "busy_rate" in run_row.extra:
                    metered[label].append(run_row.extra["busy_rate"])
                cpu[label].append(run_row.extra["cpu_seconds"])
            if len(metered["on"]) == len(metered["off"]) == 2:
                rate["metrics_on"] = statistics.mean(metered["on"])
                rate["metrics_off"] = statistics.mean(metered["off"])
                rounds["metrics_cost"].append(rate["metrics_on"] / rate["metrics_off"])
            # The workers' CPU time, start-up included: what the metrics add to it, steadier
            # on a busy machine than a rate (time spent waiting for a core is not in it).
            rate["metrics_on_cpu"] = statistics.mean(cpu["on"])
            rate["metrics_off_cpu"] = statistics.mean(cpu["off"])
            rounds["metrics_cpu"].append(rate["metrics_on_cpu"] / rate["metrics_off_cpu"])
            rates.append(rate)
        info["paired_rounds"] = rounds
        info["paired_round_rates"] = rates
    finally:
        await naq.disconnect()
        await nc.close()

    set_ratios(rows)

    # Notes: what the numbers include, and the drain rate with the worker's fixed cost taken out.
    notes.append(
        f"Raw rows publish a {len(payload)}-byte payload (the size of a naq job envelope) to a "
        "work-queue, file-storage stream with no headers; naq rows publish the real envelope "
        "plus a pending-status KV write per job (sent ahead of it, unacknowledged)."
    )
    notes.append(
        "Worker rows are timed from spawning the process to its exit: interpreter start, imports, "
        "connecting, creating the consumer, and burst-mode idle detection are included; each job "
        "costs a result create (acknowledged: it is the first-result-wins fence), a "
        "completed-status write and an outcome-log entry (both unacknowledged) and the job's "
        "ack; no-op jobs end before their running status is due (NAQ_RUNNING_STATUS_DELAY)."
    )
    if mode_used == "cli":
        notes.append("Worker started as `python -m naq worker QUEUE --burst -c N -u URL`.")
    else:
        why = "--worker inproc" if args.worker == "inproc" else "naq has no CLI yet"
        notes.append(
            f"Worker started as `python -c` running naq.Worker(..., burst=True).run_sync() ({why})."
        )
    for row in (r6a, r6b, r7a, r7b):
        steady = row.extra.get("busy_rate")
        if row.error is None and steady and r5.error is None and r5.rate:
            notes.append(
                f"{row.name}: {steady:,.0f} job/s = {steady / r5.rate:.2f}× the raw drain from "
                f"the worker's first job's start to its last one's end (its own measure, logged "
                f"at exit: {row.extra['busy_seconds']:.2f} s), start-up and shut-down left out."
            )
    one_at_a_time = [r for r in (r7a, r7b) if r.error is None and r.extra.get("busy_rate")]
    if one_at_a_time and r7raw.error is None and r7raw.rate:
        ratios = ", ".join(
            f"{r.name.split(', ')[1]} {r.extra['busy_rate'] / r7raw.rate:.2f}×"
            for r in one_at_a_time
        )
        notes.append(
            f"At -c {args.concurrency_one}, against {r7raw.name} ({r7raw.rate:,.0f} msg/s): "
            f"{ratios}, first start to last end. One message per pull is slow on nats-server's "
            "side: acking a message of a long work queue re-reads and re-indexes its message "
            "block file (a profile of nats-server shows three quarters of its CPU there), so "
            "the raw drain slows the same way."
        )
    by_name = {row.name: row for row in rows}
    lean_pub, many = by_name[R_LEAN_PUB], by_name[N_ENQ_MANY.format(chunk=args.chunk)]
    if lean_pub.error is None and many.error is None and lean_pub.rate and many.rate:
        notes.append(
            f"{many.name}: {many.rate / lean_pub.rate:.2f}× the lean publish "
            "(each job is two messages: the job and its pending-status record)."
        )
    lean = by_name[R_LEAN_DRAIN.format(batch=args.fetch_batch)]
    for row in (r6a, r6b):
        if lean.error is None and row.error is None and lean.rate and row.rate:
            steady = row.extra.get("busy_rate", row.rate)
            notes.append(
                f"{row.name}: {row.rate / lean.rate:.2f}× the lean pull loop "
                f"({steady / lean.rate:.2f}× without the worker's start-up)."
            )
    if r5c.error is None and r5c.rate:
        sizes = info["naq_write_bytes"]
        notes.append(
            f"{r5c.name}: naq's jobs, enqueued by naq (untimed), pulled from their queue's "
            f"consumer; per job a {sizes['result']}-byte result create with its TTL and "
            f"expected-last-sequence headers (acknowledged), then a {sizes['status']}-byte "
            f"completed status with its TTL (unacknowledged), the {sizes['outcome']}-byte "
            "outcome-log entry (unacknowledged) and the job's ack: a worker's NATS traffic "
            "for a no-op job without its Python work."
        )
        cores = info.get("lean_naq_writes_cores", [])
        if cores and all(c["nats_server"] is not None for c in cores):
            each = ", ".join(f"{c['nats_server']:.2f}/{c['client']:.2f}" for c in cores)
            notes.append(
                "CPU cores busy during each run of that loop, nats-server/this process "
                f"(table row first, then each paired round): {each}."
            )
        for row in (r6a, r6b):
            if row.error is None and row.rate:
                steady = row.extra.get("busy_rate", row.rate)
                notes.append(
                    f"{row.name}: {row.rate / r5c.rate:.2f}× the lean loop making naq's writes "
                    f"({steady / r5c.rate:.2f}× without the worker's start-up)."
                )
    notes += paired_notes(info.get("paired_rounds", {}), args)
    return rows, notes, info


def paired_notes(rounds: dict[str, list[float]], args: argparse.Namespace) -> list[str]:
    """One note per paired-rounds measure: the median ratio and every round's."""
    drain = f"naq worker -c {args.concurrency} async drain (first start to last end)"
    labels = {
        "enqueue": "enqueue, awaited / raw js.publish, awaited",
        "enqueue_many": f"enqueue_many ({args.chunk}/call) / raw publish_async",
        "drain_async": f"{drain} / raw fetch({args.fetch_batch}) + ack",
        "drain_async_lean": f"{drain} / the lean pull loop making naq's writes",
        "metrics_cost": f"{drain} with metrics on (NAQ_METRICS_INTERVAL=1, a report a "
        "second) / off (NAQ_METRICS_INTERVAL=0), each the mean of two drains run on, off, "
        "off, on (off, on, on, off the next round)",
        "metrics_cpu": "the worker process's CPU seconds (start-up included) in those drains, "
        "metrics on / off",
    }
    notes = []
    for key, ratios in rounds.items():
        if ratios:
            # A cost of a few per cent needs the third digit.
            metrics = key.startswith("metrics")
            digits = 3 if metrics else 2
            each = ", ".join(f"{r:.{digits}f}" for r in ratios)
            lead = (
                "Paired rounds, the metrics' cost"
                if metrics
                else "Paired rounds, each raw run straight before naq's"
            )
            notes.append(
                f"{lead}: {labels[key]} = "
                f"{statistics.median(ratios):.{digits}f}× median of {len(ratios)} ({each})."
            )
    return notes


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, parse_args, argv, "worker and nats-server stopped")


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="naq-bench-core-") as tmp, embedded_server() as server:
        print(
            f"nats-server {machine['nats_server']} at {server.url} (pid {server.pid})", flush=True
        )
        rows, notes, info = asyncio.run(run(server.url, args, Path(tmp), server.pid))
        failed_logs = [
            f"--- {p.name}\n{log_tail(p)}"
            for p in sorted(Path(tmp).glob("worker-*.log"))
            if any(r.error for r in rows)
        ]
    title = "Core: naq vs raw nats-py" + (" (quick)" if args.quick else "")
    print_table(title, rows)
    for note in notes:
        print("-", note)
    for text in failed_logs:
        print(text)
    if args.quick:
        print("quick run: no result files written")
    else:
        params = {k: v for k, v in vars(args).items()} | info
        path = save_results(
            "core",
            title="Core: naq vs raw nats-py",
            command=reproduce_command("bench_core.py", argv),
            rows=rows,
            params=params,
            notes=notes,
            machine=machine,
        )
        print(f"wrote {path.relative_to(REPO_ROOT)} and bench/RESULTS.md")
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
