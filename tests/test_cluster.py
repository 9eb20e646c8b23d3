"""naq on a 3-node NATS cluster with NAQ_REPLICAS=3: losing one node loses nothing.

In the node-loss test the node that is killed is made to matter as much as possible: it is the
node a worker process is connected to, and the leader of the jobs stream, of the queue's consumer
and of the results and status buckets. So one SIGKILL takes away, at once, a worker's connection,
the pull requests in flight, and the leaders of everything a job passes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

import naq
from naq.broker import Broker
from naq.models import result_decoder
from naq.names import Names
from naq.settings import get_settings
from tests import jobs
from tests.cluster import NatsCluster, Node, connect, move_consumer_leader, move_stream_leader
from tests.helpers import prefix, start_process, stop_processes, wait_until

Q = "clustered"
TOTAL = 360
#: Seconds each job sleeps: with 2 workers x 4 slots the run lasts ~4.5 s, long enough to kill a
#: node in the middle of it.
JOB_SECONDS = 0.1
#: Seconds a polling JetStream API call may take: during an election they go unanswered, and the
#: default 5 s would make each poll of wait_until that slow.
POLL_TIMEOUT = 1.0


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsCluster]:
    """A running 3-node cluster of this test's own; NAQ_NATS_URL lists every node, NAQ_REPLICAS=3.

    Function-scoped on purpose: a test that kills a node and fails half-way must not hand a
    degraded cluster to the next test.
    """
    nats_cluster = NatsCluster(tmp_path / "cluster")
    nats_cluster.start()
    try:
        monkeypatch.setenv("NAQ_NATS_URL", nats_cluster.urls)
        monkeypatch.setenv("NAQ_REPLICAS", "3")
        # A job whose delivery died with the node comes back after 3 s instead of 30.
        monkeypatch.setenv("NAQ_DEFAULT_ACK_WAIT", "3")
        yield nats_cluster
    finally:
        nats_cluster.stop()


def start_worker(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A worker process named ``name`` on queue ``Q`` with 4 slots."""
    return start_process(tmp_path, name, "worker", Q, "-n", name, "-c", "4", "-l", "INFO")


def assert_alive(procs: dict[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """Fail, quoting its log, if one of the named processes has exited."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            log = (tmp_path / f"{name}.log").read_text().strip().splitlines()[-3:]
            raise AssertionError(f"{name} exited with code {proc.returncode}: {log}")


async def leader_of(nc: NATS, stream: str, consumer: str | None = None) -> str | None:
    """Name of the server leading ``stream`` (or its ``consumer``); None while there is none."""
    with contextlib.suppress(Exception):
        js = nc.jetstream(timeout=POLL_TIMEOUT)
        info = (
            await js.consumer_info(stream, consumer) if consumer else await js.stream_info(stream)
        )
        return info.cluster.leader if info.cluster else None
    return None


async def make_leader(nc: NATS, node: Node, stream: str, consumer: str | None = None) -> None:
    """Move the leadership of ``stream`` (or its ``consumer``) to ``node`` and check it moved."""

    async def moved() -> bool:
        if await leader_of(nc, stream, consumer) == node.name:
            return True
        # A step-down can be refused while the previous one settles: ask again next round.
        with contextlib.suppress(Exception):
            if consumer:
                await move_consumer_leader(nc, stream, consumer, node.name)
            else:
                await move_stream_leader(nc, stream, node.name)
        return False

    await wait_until(moved, timeout=15, interval=0.3)


async def message_count(nc: NATS, stream: str) -> int:
    """Messages in ``stream``; 0 while the cluster cannot answer (a leader election)."""
    with contextlib.suppress(Exception):
        return int((await nc.jetstream(timeout=POLL_TIMEOUT).stream_info(stream)).state.messages)
    return 0


async def has_key(nc: NATS, bucket: str, key: str) -> bool:
    """Whether ``bucket`` holds ``key``, read with plain nats-py (creates nothing)."""
    with contextlib.suppress(Exception):
        await nc.jetstream(timeout=POLL_TIMEOUT).get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{key}")
        return True
    return False


async def at_least(count: Callable[[], Awaitable[int]], target: int) -> bool:
    """Whether ``count()`` has reached ``target``."""
    return await count() >= target


async def stored_results() -> dict[str, str]:
    """job id -> status of every stored result (read straight from the bucket's stream)."""
    broker = await Broker.connect(get_settings())
    entries = await broker.read_bucket(broker.names.results_bucket)
    return {
        record.job_id: record.status
        for record in (result_decoder.decode(entry.value) for entry in entries)
    }


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_killing_a_node_mid_run_loses_no_job_and_stores_each_result_once(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    names = Names(prefix())
    jobs_stream = names.jobs_stream
    consumer = names.consumer(Q)
    results_stream = f"KV_{names.results_bucket}"
    status_stream = f"KV_{names.status_bucket}"
    run_log = tmp_path / "runs.log"
    nc = await connect(cluster)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # One process at a time creates the streams and buckets: w0 first, the others once its
        # heartbeat is stored. (Started together, they trip over a bucket that exists but has no
        # leader yet: see test_workers_started_together_on_a_fresh_cluster_all_run.)
        procs["w0"] = start_worker(tmp_path, "w0")
        await wait_until(lambda: has_key(nc, names.workers_bucket, "w0"), timeout=20)
        procs["w1"] = start_worker(tmp_path, "w1")
        procs["scheduler"] = start_process(tmp_path, "scheduler", "scheduler", "-i", "sched")
        await wait_until(lambda: has_key(nc, names.workers_bucket, "w1"), timeout=20)
        await wait_until(
            lambda: has_key(nc, names.scheduler_lock_bucket, "leader_lock"), timeout=20
        )
        assert_alive(procs, tmp_path)

        # The victim: the node w0 is connected to (nats-py picks one of the seeds at random).
        # Its leaderships are moved there too, so its loss hits everything a job passes through.
        victim: Node = await wait_until(
            lambda: cluster.node_with_connection("naq-worker-w0"), timeout=10
        )
        for stream in (jobs_stream, results_stream, status_stream):
            await make_leader(nc, victim, stream)
        await make_leader(nc, victim, jobs_stream, consumer)

        # NAQ_REPLICAS=3 reached every stream and bucket naq created, and the consumer.
        js = nc.jetstream()
        buckets = (
            names.results_bucket,
            names.status_bucket,
            names.workers_bucket,
            names.cancelled_bucket,
            names.waiting_bucket,
            names.scheduled_bucket,
            names.scheduler_lock_bucket,
        )
        streams = {jobs_stream, names.failed_stream, names.outcomes_stream}
        expected = streams | {f"KV_{b}" for b in buckets}
        replicas = {
            info.config.name: info.config.num_replicas
            for info in await js.streams_info()
            if prefix() in (info.config.name or "")
        }
        assert replicas == dict.fromkeys(expected, 3)
        consumer_info = await js.consumer_info(jobs_stream, consumer)
        assert consumer_info.cluster is not None
        assert len(consumer_info.cluster.replicas or []) == 2, "consumer not on 3 servers"

        queue = naq.Queue(Q)
        created = await queue.enqueue_many(
            [(jobs.record_run, (str(run_log), f"job{i}", JOB_SECONDS), {}) for i in range(TOTAL)]
        )
        ids = {job.job_id for job in created}
        assert len(ids) == TOTAL

        def results_count() -> Awaitable[int]:
            return message_count(nc, results_stream)

        # Kill mid-run: a quarter of the jobs done, the rest pending or running.
        await wait_until(lambda: at_least(results_count, TOTAL // 4), timeout=20)
        # Due while the cluster is electing new leaders: the scheduler must still enqueue it.
        delayed = await queue.enqueue_in(1.0, jobs.add, 20, 22)
        done_before_kill = await results_count()
        log_offset = run_log.stat().st_size
        killed_at = time.monotonic()
        cluster.kill(victim)
        assert done_before_kill < TOTAL, "the run ended before the node was killed"

        # New leaders are elected among the survivors.
        survivors = {node.name for node in cluster.nodes if node is not victim}

        async def led_by_survivors() -> bool:
            leaders = [
                await leader_of(nc, jobs_stream),
                await leader_of(nc, jobs_stream, consumer),
                await leader_of(nc, results_stream),
            ]
            return all(leader in survivors for leader in leaders)

        await wait_until(led_by_survivors, timeout=20, interval=0.2)
        # Every job, and the delayed one, ends with a stored result.
        await wait_until(lambda: at_least(results_count, TOTAL + 1), timeout=40, interval=0.2)
        recovered_in = time.monotonic() - killed_at
        assert_alive(procs, tmp_path)

        # Exactly one stored result per job: the results stream took TOTAL + 1 writes in all, so
        # no job had a second result written (nor had its first overwritten).
        info = await js.stream_info(results_stream)
        assert (info.state.messages, info.state.last_seq) == (TOTAL + 1, TOTAL + 1)
        results = await stored_results()
        assert set(results) == ids | {delayed.job_id}
        assert set(results.values()) == {"completed"}
        assert await delayed.result(timeout=10) == 42
        # Nothing left behind in the work queue.
        assert await message_count(nc, jobs_stream) == 0

        # Nothing lost: every job ran (a job whose delivery died with the node may run twice).
        lines = run_log.read_text().splitlines()
        assert {line.split()[0] for line in lines} == {f"job{i}" for i in range(TOTAL)}
        # The worker that lost its node reconnected to another and kept taking jobs.
        after_kill = run_log.read_bytes()[log_offset:].decode().splitlines()
        assert procs["w0"].pid in {int(line.split()[1]) for line in after_kill}
        assert cluster.node_with_connection("naq-worker-w0") not in (None, victim)

        # The node comes back on its store and catches up: every replica current again.
        await asyncio.to_thread(cluster.restart, victim)

        async def replicas_current() -> bool:
            with contextlib.suppress(Exception):
                placement = (await js.stream_info(results_stream)).cluster
                peers = (placement.replicas if placement else None) or []
                return len(peers) == 2 and all(p.current and not p.offline for p in peers)
            return False

        await wait_until(replicas_current, timeout=20, interval=0.2)
        print(
            f"\n{TOTAL + 1 - done_before_kill} jobs finished in {recovered_in:.1f}s after the "
            f"kill of {victim.name}; {len(lines) - TOTAL} jobs ran twice"
        )
    finally:
        stop_processes(list(procs.values()))
        await nc.close()
        await naq.disconnect()


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_workers_started_together_on_a_fresh_cluster_all_run(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    """Workers deployed together (as an orchestrator starts replicas) must all come up.

    On a fresh cluster they race to create the same R3 streams and buckets; one that finds a
    bucket already created but still without a leader must wait for it, not exit.
    """
    names = Names(prefix())
    nc = await connect(cluster)
    workers = {f"w{n}": start_worker(tmp_path, f"w{n}") for n in range(3)}
    try:

        async def all_heartbeats() -> bool:
            assert_alive(workers, tmp_path)
            present = [await has_key(nc, names.workers_bucket, name) for name in workers]
            return all(present)

        await wait_until(all_heartbeats, timeout=20, interval=0.2)
        # And they work: a batch of jobs is shared between them and completes.
        created = await naq.Queue(Q).enqueue_many([(jobs.add, (i, i), {}) for i in range(30)])
        infos = await asyncio.gather(*(naq.wait_for_job(job.job_id, 20) for job in created))
        assert [info.result for info in infos] == [2 * i for i in range(30)]
        assert_alive(workers, tmp_path)
    finally:
        stop_processes(list(workers.values()))
        await nc.close()
        await naq.disconnect()
