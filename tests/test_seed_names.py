"""The names of naq's original API, each imported and used: ``naq.exceptions``, ``naq.utils``,
the status enums of ``naq.settings``, ``naq.connection``'s functions, ``close_sync_connections``,
``Worker.list_workers`` and ``Worker(ack_wait=...)``, and ``naq.queue.ScheduledJobManager``.

The tests that talk to NATS use the session's real nats-server."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import inspect
import json
import logging
import math
import pkgutil
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

import naq
import naq.connection
import naq.errors
import naq.exceptions
import naq.models
import naq.queue
import naq.settings
import naq.utils
from naq.log_level import HANDLER_NAME
from naq.settings import get_settings
from naq.transport import get_connection
from tests import jobs
from tests.helpers import prefix, running_worker, wait_until

Q = "seed-names"


# -- naq.exceptions --------------------------------------------------------------


def test_naq_exceptions_shows_the_very_classes_of_naq_errors() -> None:
    defined = {
        name: value
        for name, value in vars(naq.errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert {"NaqException", "NaqConnectionError", "JobNotFoundError"} <= defined.keys()
    for name, cls in defined.items():
        assert getattr(naq.exceptions, name) is cls, name
        assert getattr(naq, name) is cls, name
        assert name in naq.exceptions.__all__
    assert naq.exceptions.ConnectionError is naq.NaqConnectionError
    assert naq.exceptions.ConnectionError is not builtins.ConnectionError


def test_raising_naq_exceptions_connection_error_is_caught_as_naqs() -> None:
    with pytest.raises(naq.NaqConnectionError, match="nats://nowhere"):
        raise naq.exceptions.ConnectionError("NATS at nats://nowhere can't be reached")
    with pytest.raises(naq.NaqException):
        raise naq.exceptions.ConfigurationError("bad")
    # The builtin is not naq's: an OSError-style connection error passes naq's handlers by.
    with pytest.raises(builtins.ConnectionError):
        try:
            raise builtins.ConnectionError("socket")
        except naq.NaqException:  # pragma: no cover - must not catch it
            pytest.fail("naq's error tree caught the builtin ConnectionError")


def test_no_other_naq_module_shadows_the_builtin_connection_error() -> None:
    shadowing = []
    for info in pkgutil.walk_packages(naq.__path__, "naq."):
        if info.name in {"naq.__main__", "naq.exceptions"}:
            continue
        module = importlib.import_module(info.name)
        found = vars(module).get("ConnectionError", builtins.ConnectionError)
        if found is not builtins.ConnectionError:
            shadowing.append(info.name)
    assert shadowing == []


# -- status enums ------------------------------------------------------------------


def test_status_enums_have_the_documented_values() -> None:
    assert [s.value for s in naq.settings.JOB_STATUS] == [
        "pending",
        "scheduled",
        "running",
        "retry",
        "completed",
        "failed",
        "cancelled",
        "paused",
    ]
    assert [s.value for s in naq.settings.SCHEDULED_JOB_STATUS] == ["active", "paused", "failed"]
    assert [s.value for s in naq.settings.WORKER_STATUS] == ["starting", "idle", "busy", "stopping"]
    # One definition, under every name.
    assert naq.JOB_STATUS is naq.settings.JOB_STATUS is naq.models.JobStatus is naq.JobStatus
    assert naq.WORKER_STATUS is naq.settings.WORKER_STATUS is naq.WorkerStatus
    assert naq.SCHEDULED_JOB_STATUS is naq.settings.SCHEDULED_JOB_STATUS
    assert naq.models.ScheduleStatus is naq.SCHEDULED_JOB_STATUS
    assert naq.JOB_STATUS.ENDED == {"completed", "failed", "cancelled"}


def test_the_seed_constants_are_plain_strings_equal_to_the_members() -> None:
    s = naq.settings
    pairs = [
        (s.JOB_STATUS_COMPLETED, s.JOB_STATUS.COMPLETED),
        (s.JOB_STATUS_FAILED, s.JOB_STATUS.FAILED),
        (s.SCHEDULED_JOB_STATUS_ACTIVE, s.SCHEDULED_JOB_STATUS.ACTIVE),
        (s.SCHEDULED_JOB_STATUS_PAUSED, s.SCHEDULED_JOB_STATUS.PAUSED),
        (s.SCHEDULED_JOB_STATUS_FAILED, s.SCHEDULED_JOB_STATUS.FAILED),
        (s.WORKER_STATUS_STARTING, s.WORKER_STATUS.STARTING),
        (s.WORKER_STATUS_IDLE, s.WORKER_STATUS.IDLE),
        (s.WORKER_STATUS_BUSY, s.WORKER_STATUS.BUSY),
        (s.WORKER_STATUS_STOPPING, s.WORKER_STATUS.STOPPING),
    ]
    for constant, member in pairs:
        assert type(constant) is str and constant == member


@pytest.mark.parametrize("member", [*naq.JOB_STATUS, *naq.SCHEDULED_JOB_STATUS, *naq.WORKER_STATUS])
def test_a_status_reads_as_its_value_everywhere(member: Any) -> None:
    value = member.value
    assert str(member) == f"{member}" == format(member) == value
    # %-formatting is how logging formats a record; str.format how many templates do.
    assert "%s" % (member,) == "{}".format(member) == value  # noqa: UP031, UP032
    assert f"{member:>12}" == f"{value:>12}"
    assert member == value and hash(member) == hash(value)
    assert value in {member} and member in {value}
    assert json.dumps({"status": member, member: 1}) == json.dumps({"status": value, value: 1})
    assert msgspec.json.encode(member) == msgspec.json.encode(value)
    assert msgspec.msgpack.encode(member) == msgspec.msgpack.encode(value)
    assert type(member)(value) is member


# -- naq.utils ---------------------------------------------------------------------


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, put back as it was after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def naq_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if h.get_name() == HANDLER_NAME]


def test_setup_logging_follows_naq_log_level_rule(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NAQ_LOG_LEVEL", raising=False)
    naq.utils.setup_logging()
    assert root_logging.level == logging.INFO and len(naq_handlers(root_logging)) == 1
    monkeypatch.setenv("NAQ_LOG_LEVEL", "error")
    naq.utils.setup_logging()
    assert root_logging.level == logging.ERROR
    naq.utils.setup_logging("debug")  # the argument wins over the variable
    assert root_logging.level == logging.DEBUG and len(naq_handlers(root_logging)) == 1


def test_setup_logging_refuses_a_bad_level_naming_it(root_logging: logging.Logger) -> None:
    with pytest.raises(naq.ConfigurationError, match="'loud'"):
        naq.utils.setup_logging("loud")
    with pytest.raises(naq.ConfigurationError, match="10"):
        naq.utils.setup_logging(10)  # type: ignore[arg-type]


async def enqueue_and_read_status(a: int) -> tuple[int, str]:
    """Enqueue a job (no worker runs it) and read its status back: naq work on NATS."""
    job = await naq.enqueue(jobs.add, a, 1, queue_name=Q)
    info = await naq.get_job(job.job_id)
    return a, info.status


@pytest.mark.usefixtures("nats_url")
def test_run_async_from_sync_many_times_in_a_row_and_from_threads() -> None:
    for a in range(3):
        assert naq.utils.run_async_from_sync(enqueue_and_read_status(a)) == (a, "pending")
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def client(a: int) -> None:
        try:
            results.append(naq.utils.run_async_from_sync(enqueue_and_read_status(a)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(a,)) for a in (10, 11, 12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert sorted(results) == [(10, "pending"), (11, "pending"), (12, "pending")]


@pytest.mark.usefixtures("nats_url")
async def test_run_async_from_sync_while_an_event_loop_runs_in_this_thread() -> None:
    assert asyncio.get_running_loop().is_running()
    for a in range(3):  # plain blocking calls from a coroutine of this loop
        assert naq.utils.run_async_from_sync(enqueue_and_read_status(a)) == (a, "pending")
    assert naq.utils.run_async_from_sync(asyncio.sleep(0, result="done"), timeout=5) == "done"
    # This loop's own naq work goes on meanwhile.
    assert (await enqueue_and_read_status(7)) == (7, "pending")


def test_run_async_from_sync_refuses_what_is_not_a_coroutine() -> None:
    with pytest.raises(TypeError, match="enqueue_and_read_status"):
        naq.utils.run_async_from_sync(enqueue_and_read_status)  # type: ignore[arg-type]


@pytest.mark.usefixtures("nats_url")
def test_close_sync_connections_closes_them_and_sync_helpers_work_after() -> None:
    job = naq.enqueue_sync(jobs.add, 1, 2, queue_name=Q)
    connection = naq.utils.run_async_from_sync(_shared_connection())
    assert not connection.is_closed
    naq.close_sync_connections()
    assert connection.is_closed
    naq.close_sync_connections()  # harmless again
    assert naq.get_job_sync(job.job_id).status == naq.JOB_STATUS.PENDING
    again = naq.utils.run_async_from_sync(_shared_connection())
    assert again is not connection and not again.is_closed


async def _shared_connection() -> Any:
    return await get_connection(get_settings())


# -- completed jobs, workers --------------------------------------------------------


@pytest.mark.usefixtures("nats_url")
async def test_statuses_naq_returns_equal_the_members() -> None:
    async with running_worker(Q) as worker:
        job = await naq.enqueue(jobs.add, 2, 3, queue_name=Q)
        info = await naq.wait_for_job(job.job_id, timeout=10)
        assert info.status == naq.JOB_STATUS.COMPLETED
        assert naq.JOB_STATUS(info.status) is naq.JOB_STATUS.COMPLETED
        assert f"{info.status}" == f"{naq.JOB_STATUS.COMPLETED}" == "completed"
        workers = {w.name: w for w in await naq.Worker.list_workers()}
        assert workers[worker.name].status in (naq.WORKER_STATUS.IDLE, naq.WORKER_STATUS.BUSY)
        # The sync twin, from a thread (it blocks): the same workers as naq.list_workers.
        listed = await asyncio.to_thread(naq.Worker.list_workers_sync)
        assert [w.name for w in listed] == [w.name for w in await naq.list_workers()]
        assert worker.name in [w.name for w in listed]
        scheduled = await naq.enqueue_in(3600, jobs.add, 1, 1, queue_name=Q)
        (schedule,) = await naq.list_scheduled_jobs(job_id=scheduled.job_id)
        assert schedule.status == naq.SCHEDULED_JOB_STATUS.ACTIVE
    assert naq.Worker.list_workers_sync is naq.list_workers_sync
    assert inspect.iscoroutinefunction(naq.Worker.list_workers)


# -- Worker(ack_wait=...) ----------------------------------------------------------------


async def consumer_ack_wait(queue: str) -> float:
    """The ack wait of ``queue``'s durable consumer, as the server tells it."""
    js = await naq.connection.get_jetstream_context()
    try:
        info = await js.consumer_info(f"{prefix()}_jobs", f"{prefix()}_worker_{queue}")
        return float(info.config.ack_wait)
    finally:
        await naq.connection.close_nats_connection()


@pytest.mark.usefixtures("nats_url")
async def test_worker_ack_wait_is_the_consumers_read_back_from_the_server() -> None:
    queue = "ack-wait"
    async with running_worker(queue, ack_wait=7) as worker:
        assert worker.ack_wait == 7.0
        assert await consumer_ack_wait(queue) == 7.0
        job = await naq.enqueue(jobs.add, 1, 1, queue_name=queue)
        assert await job.result(timeout=10) == 2
    # A worker asking for another ack wait updates the shared consumer to it ...
    async with running_worker(queue, ack_wait=9):
        assert await consumer_ack_wait(queue) == 9.0
    # ... one that asks for none leaves it, and keeps its jobs alive at its pace.
    async with running_worker(queue) as default:
        assert default.ack_wait == get_settings().default_ack_wait == 30.0
        assert await consumer_ack_wait(queue) == 9.0
        assert default._state is not None and default._state.ack_wait == 9.0


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "7", True, [7]])
def test_worker_refuses_a_bad_ack_wait_naming_it(bad: Any) -> None:
    with pytest.raises(naq.ConfigurationError, match=re.escape(f"ack_wait={bad!r} must be")):
        naq.Worker(Q, ack_wait=bad)


# -- naq.connection --------------------------------------------------------------------


async def round_trip(nc: Any, subject: str) -> bytes:
    """Subscribe to ``subject`` on ``nc``, publish to it, return what arrived."""
    arrived: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_message(msg: Any) -> None:
        if not arrived.done():
            arrived.set_result(msg.data)

    sub = await nc.subscribe(subject, cb=on_message)
    try:
        await nc.publish(subject, b"ping")
        return await asyncio.wait_for(arrived, 5)
    finally:
        await sub.unsubscribe()


async def test_the_nats_client_is_naqs_shared_one_and_closing_it_spares_a_queue(
    nats_url: str,
) -> None:
    nc = await naq.connection.get_nats_connection(nats_url)
    async with naq.Queue(Q) as queue:
        assert (await get_connection(get_settings())).nc is nc  # one connection, shared
        assert await round_trip(nc, f"{prefix()}.seed.ping") == b"ping"
        js = await naq.connection.get_jetstream_context(nc)
        await naq.connection.ensure_stream(js)
        info = await js.stream_info(f"{prefix()}_jobs")
        assert info.config.subjects == [f"{prefix()}.queue.*"]
        assert info.config.retention == "workqueue"
        await naq.connection.close_nats_connection(nats_url)
        # The queue still uses the connection: it stays open, and the queue enqueues.
        assert not nc.is_closed
        job = await queue.enqueue(jobs.add, 1, 2)
        assert (await naq.get_job(job.job_id)).status == naq.JOB_STATUS.PENDING
        await naq.connection.close_nats_connection(nats_url)  # no lease left: harmless
        assert not nc.is_closed
        assert (await queue.enqueue(jobs.add, 3, 4)).job_id


async def test_the_last_lease_closes_a_connection_nothing_else_uses(nats_url: str) -> None:
    nc = await naq.connection.get_nats_connection(nats_url)
    js = await naq.connection.get_jetstream_context()  # a second lease, same connection
    assert await naq.connection.get_nats_connection(nats_url) is nc  # and a third
    await js.account_info()
    await naq.connection.close_nats_connection(nats_url)
    await naq.connection.close_nats_connection()
    assert nc.is_connected
    await naq.connection.close_nats_connection(nats_url)
    assert nc.is_closed
    await naq.connection.close_nats_connection(nats_url)  # harmless again
    # naq opens a new shared connection for its next user.
    job = await naq.enqueue(jobs.add, 1, 2, queue_name=Q)
    assert (await naq.get_job(job.job_id)).status == naq.JOB_STATUS.PENDING
    assert (await get_connection(get_settings())).nc is not nc


async def test_naq_connect_keeps_the_connection_whatever_the_leases(nats_url: str) -> None:
    connection = await naq.connect()
    nc = await naq.connection.get_nats_connection(nats_url)
    await naq.connection.close_nats_connection(nats_url)
    assert not connection.is_closed and nc.is_connected
    await naq.disconnect()
    assert nc.is_closed


async def test_ensure_stream_for_another_stream_and_bad_arguments(nats_url: str) -> None:
    js = await naq.connection.get_jetstream_context()
    try:
        name = f"{prefix()}_extra"
        await naq.connection.ensure_stream(js, stream_name=name)
        await naq.connection.ensure_stream(js, stream_name=name)  # exists: left as it is
        info = await js.stream_info(name)
        assert info.config.subjects == [f"{name}.>"]
        assert info.config.retention == "workqueue"
        await naq.connection.ensure_stream(stream_name=f"{name}2", subjects=[f"{name}2.a"])
        assert (await js.stream_info(f"{name}2")).config.subjects == [f"{name}2.a"]
        with pytest.raises(naq.ConfigurationError, match=r"'x\.>'"):
            await naq.connection.ensure_stream(subjects=["x.>"])
        with pytest.raises(naq.ConfigurationError, match="'bad.name'"):
            await naq.connection.ensure_stream(stream_name="bad.name")
        with pytest.raises(naq.ConfigurationError, match="js='nope'"):
            await naq.connection.ensure_stream("nope")  # type: ignore[arg-type]
        with pytest.raises(naq.ConfigurationError, match="nc=42"):
            await naq.connection.get_jetstream_context(42)  # type: ignore[arg-type]
    finally:
        await naq.connection.close_nats_connection()


# -- ScheduledJobManager -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def leading_scheduler() -> AsyncIterator[naq.Scheduler]:
    """A scheduler as a task of this loop; yields once it leads."""
    scheduler = naq.Scheduler(poll_interval=0.1, install_signal_handlers=False)
    task = asyncio.create_task(scheduler.run())
    try:
        await wait_until(lambda: task.done() or scheduler.is_leader)
        if task.done():
            task.result()
        yield scheduler
    finally:
        scheduler.request_stop()
        await asyncio.wait_for(task, 15)


@pytest.mark.usefixtures("nats_url")
async def test_scheduled_job_manager_stores_and_controls_schedules() -> None:
    manager = naq.queue.ScheduledJobManager(Q)
    assert manager.queue_name == Q
    assert isinstance(naq.Queue(Q)._scheduled_job_manager, naq.queue.ScheduledJobManager)
    job = naq.Job(jobs.add, (1, 2), queue_name=Q)
    later = time.time() + 3600
    await manager.store_job(job, later, interval_seconds=60, repeat=3)
    (schedule,) = await naq.list_scheduled_jobs(job_id=job.job_id)
    assert (schedule.queue, schedule.interval, schedule.repeat) == (Q, 60.0, 3)
    assert schedule.status == naq.SCHEDULED_JOB_STATUS.ACTIVE
    assert schedule.next_run == pytest.approx(later)
    assert (await naq.get_job(job.job_id)).status == naq.JOB_STATUS.SCHEDULED
    kv = await manager.get_kv()
    entry = await kv.get(job.job_id)
    assert entry is not None and b'"interval":60.0' in entry.value

    assert await manager.update_job_status(job.job_id, "paused") is True
    assert await manager.update_job_status(job.job_id, naq.SCHEDULED_JOB_STATUS.PAUSED) is False
    (schedule,) = await naq.list_scheduled_jobs(job_id=job.job_id)
    assert schedule.status == "paused"
    assert await manager.update_job_status(job.job_id, "active") is True
    assert await manager.modify_job(job.job_id, interval=30, repeat=5) is True
    (schedule,) = await naq.list_scheduled_jobs(job_id=job.job_id)
    assert (schedule.status, schedule.interval, schedule.repeat) == ("active", 30.0, 5)

    assert await manager.cancel_job(job.job_id) is True
    assert await naq.list_scheduled_jobs(job_id=job.job_id) == []
    assert (await naq.get_job(job.job_id)).status == naq.JOB_STATUS.CANCELLED
    # An id naq has no schedule for: JobNotFoundError naming it (the API's rule).
    with pytest.raises(naq.JobNotFoundError, match=job.job_id):
        await manager.cancel_job(job.job_id)
    with pytest.raises(naq.JobNotFoundError, match=job.job_id):
        await manager.update_job_status(job.job_id, "paused")
    with pytest.raises(naq.JobNotFoundError, match=job.job_id):
        await manager.modify_job(job.job_id, repeat=2)


@pytest.mark.usefixtures("nats_url")
async def test_a_stored_job_is_run_by_the_scheduler() -> None:
    manager = naq.queue.ScheduledJobManager(Q)
    job = naq.Job(jobs.add, (20, 22), queue_name=Q)
    await manager.store_job(job, time.time())
    async with running_worker(Q), leading_scheduler():
        info = await naq.wait_for_job(job.job_id, timeout=10)
    assert (info.status, info.result) == (naq.JOB_STATUS.COMPLETED, 42)


async def test_scheduled_job_manager_refuses_bad_input_naming_it() -> None:
    manager = naq.queue.ScheduledJobManager(Q)
    job = naq.Job(jobs.add, (1, 2), queue_name=Q)
    with pytest.raises(naq.ConfigurationError, match="'running'"):
        await manager.update_job_status(job.job_id, "running")
    with pytest.raises(naq.ConfigurationError, match="'failed'"):
        await manager.update_job_status(job.job_id, "failed")
    with pytest.raises(naq.ConfigurationError, match="is not a naq Job"):
        await manager.store_job("add", time.time())  # type: ignore[arg-type]
    other = naq.Job(jobs.add, (1, 2), queue_name="elsewhere")
    with pytest.raises(naq.ConfigurationError, match="'elsewhere'"):
        await manager.store_job(other, time.time())
    with pytest.raises(naq.ConfigurationError, match="not both"):
        await manager.store_job(job, time.time(), cron="* * * * *", interval_seconds=5)
    with pytest.raises(naq.ConfigurationError, match="'every day'"):
        await manager.store_job(job, time.time(), cron="every day")
    with pytest.raises(naq.ConfigurationError, match="interval_seconds=0"):
        await manager.store_job(job, time.time(), interval_seconds=0)
    with pytest.raises(naq.ConfigurationError, match="repeat=2"):
        await manager.store_job(job, time.time(), repeat=2)
    with pytest.raises(naq.ConfigurationError, match="scheduled_timestamp='soon'"):
        await manager.store_job(job, "soon")  # type: ignore[arg-type]
    with pytest.raises(naq.InvalidQueueNameError):
        naq.queue.ScheduledJobManager("bad queue")
