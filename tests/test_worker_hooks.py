"""Lifespans, middleware, job callbacks and max_jobs, in workers against a real nats-server."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

import naq
from naq import Queue
from tests import hook_jobs, jobs
from tests.helpers import running_worker, wait_until
from tests.hook_jobs import EVENTS

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "hooks"


@pytest.fixture(autouse=True)
def clear_events() -> None:
    EVENTS.clear()


# -- lifespan ------------------------------------------------------------------------------


async def test_lifespan_state_reaches_async_and_sync_jobs_and_exits_after_the_last_job() -> None:
    async with Queue(Q) as queue:
        async with running_worker(Q, lifespan=hook_jobs.lifespan, worker_name="life-1") as w:
            assert EVENTS == [("enter", "life-1")]
            a = await queue.enqueue(hook_jobs.async_state_job)
            s = await queue.enqueue(hook_jobs.sync_state_job)
            assert await a.result(timeout=10) == "pool-of-life-1"
            assert await s.result(timeout=10) == "pool-of-life-1"
            slow = await queue.enqueue(hook_jobs.slow_state_job, 0.5)
            await wait_until(lambda: w._state is not None and w._state.running)
        # The block stopped the worker while the slow job ran: it finished first, then exit.
        assert await slow.result(timeout=10) is True
    assert EVENTS == [("enter", "life-1"), ("exit", "life-1")]


async def test_worker_state_outside_a_worker_is_a_clear_error() -> None:
    with pytest.raises(naq.NaqException, match="only available inside a worker"):
        naq.worker_state()


async def test_a_failing_lifespan_stops_the_worker_before_any_job() -> None:
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.add, 1, 2)
        worker = naq.Worker(Q, lifespan=hook_jobs.broken_lifespan, install_signal_handlers=False)
        with pytest.raises(naq.WorkerStartupError, match="database unreachable") as caught:
            await asyncio.wait_for(worker.run(), 10)
        assert "tests.hook_jobs:broken_lifespan" in str(caught.value)
        assert (await job.info()).status == naq.JobStatus.PENDING


def test_cli_failing_lifespan_is_one_line_and_exit_1(nats_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "naq", "worker", Q, "--nats-url", nats_url,
         "--lifespan", "tests.hook_jobs:broken_lifespan"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "database unreachable" in errors[0]
    assert "Traceback" not in out.stderr


def test_bad_lifespan_and_middleware_values_are_named() -> None:
    with pytest.raises(naq.ConfigurationError, match="lifespan=42"):
        naq.Worker(Q, lifespan=42)  # type: ignore[arg-type]
    with pytest.raises(naq.ConfigurationError, match="has none of the hooks"):
        naq.Worker(Q, middleware=[object()])
    with pytest.raises(naq.ConfigurationError, match="max_jobs=0"):
        naq.Worker(Q, max_jobs=0)
    with pytest.raises(naq.ConfigurationError, match="max_memory=-1"):
        naq.Worker(Q, max_memory=-1)


# -- middleware ----------------------------------------------------------------------------


async def test_middleware_hooks_run_in_order_with_their_arguments() -> None:
    a, b = hook_jobs.Recorder("a"), hook_jobs.Recorder("b")
    async with Queue(Q) as queue:
        async with running_worker(
            Q, middleware=[a, b], lifespan=hook_jobs.lifespan, worker_name="mw-1"
        ):
            job = await queue.enqueue(hook_jobs.double, 21)
            assert await job.result(timeout=10) == 42
            await wait_until(lambda: len(EVENTS) >= 7)
    fn = "tests.hook_jobs:double"
    assert EVENTS == [
        ("enter", "mw-1"),
        ("a", "on_worker_start", "mw-1", "pool-of-mw-1"),
        ("b", "on_worker_start", "mw-1", "pool-of-mw-1"),
        ("a", "before_job", job.job_id, fn, [21], 1),
        ("b", "before_job", job.job_id, fn, [21], 1),
        ("b", "after_job", job.job_id, "completed", 42, False),
        ("a", "after_job", job.job_id, "completed", 42, False),
        ("b", "on_worker_stop", "mw-1"),
        ("a", "on_worker_stop", "mw-1"),
        ("exit", "mw-1"),
    ]


async def test_before_job_raising_fails_the_attempt_and_the_retry_policy_applies() -> None:
    gate = hook_jobs.Recorder("gate", fail_before=1)
    async with Queue(Q) as queue, running_worker(Q, middleware=[gate]):
        job = await queue.enqueue(hook_jobs.double, 5, max_retries=1, retry_delay=0.1)
        assert await job.result(timeout=10) == 10
        info = await job.info()
        await wait_until(
            lambda: ("gate", "after_job", job.job_id, "completed", 10, False) in EVENTS
        )
    assert info.attempt == 2
    seen = _job_events()
    assert [e[1] for e in seen] == [
        "before_job",
        "on_retry",
        "after_job",
        "before_job",
        "after_job",
    ]
    assert "PermissionError('gate refused')" in seen[1][3]
    assert seen[2] == ("gate", "after_job", job.job_id, "failed", None, True)
    assert info.attempts_log[0]["error_type"] == "PermissionError"


async def test_on_failure_for_a_job_failed_for_good() -> None:
    rec = hook_jobs.Recorder("r")
    async with Queue(Q) as queue, running_worker(Q, middleware=[rec]):
        job = await queue.enqueue(hook_jobs.explode)
        with pytest.raises(naq.JobExecutionError, match="kaboom"):
            await job.result(timeout=10)
        await wait_until(lambda: len(_job_events()) >= 3)
    seen = _job_events()
    assert [e[1] for e in seen] == ["before_job", "on_failure", "after_job"]
    assert seen[2] == ("r", "after_job", job.job_id, "failed", None, False)


def _job_events() -> list[tuple[object, ...]]:
    return [e for e in EVENTS if len(e) > 1 and e[1] not in ("on_worker_start", "on_worker_stop")]


async def test_a_before_job_hook_counts_against_the_timeout() -> None:
    async with Queue(Q) as queue, running_worker(Q, middleware=[hook_jobs.SlowBefore()]):
        job = await queue.enqueue(jobs.add, 1, 1, timeout=0.3)
        with pytest.raises(naq.JobExecutionError, match="timeout"):
            await job.result(timeout=10)


async def test_a_failing_hook_is_logged_by_name_and_changes_no_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "naq.worker")
    async with Queue(Q) as queue, running_worker(Q, middleware=[hook_jobs.Broken()]):
        job = await queue.enqueue(hook_jobs.double, 4)
        assert await job.result(timeout=10) == 8
        await wait_until(lambda: "Broken.after_job" in caplog.text)
        assert (await job.info()).status == naq.JobStatus.COMPLETED


async def test_job_log_middleware_writes_one_structured_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "naq.jobs")
    async with Queue(Q) as queue, running_worker(Q, middleware=[naq.JobLogMiddleware()]):
        job = await queue.enqueue(hook_jobs.double, 4)
        await job.result(timeout=10)
        line = await wait_until(
            lambda: next((r.getMessage() for r in caplog.records if r.name == "naq.jobs"), None)
        )
    assert line.startswith(f"job_id={job.job_id} function=tests.hook_jobs:double queue={Q}")
    assert " attempt=1 outcome=completed duration_ms=" in line


# -- callbacks -----------------------------------------------------------------------------


async def test_callbacks_for_success_failure_and_cancellation(tmp_path: object) -> None:
    async with Queue(Q) as queue, running_worker(Q):
        ok = await queue.enqueue(hook_jobs.double, 3, on_success=hook_jobs.on_success)
        bad = await queue.enqueue(hook_jobs.explode, on_failure="tests.hook_jobs:on_failure")
        slow = await queue.enqueue(jobs.async_sleep, 30, on_stopped=hook_jobs.on_stopped)
        assert await ok.result(timeout=10) == 6
        with pytest.raises(naq.JobExecutionError):
            await bad.result(timeout=10)
        await wait_until(lambda: len(EVENTS) >= 2)
        await wait_until(lambda: slow.info(), timeout=10)
        await wait_until(lambda: _running(slow.job_id))
        await naq.cancel_job(slow.job_id)
        await wait_until(lambda: len(EVENTS) >= 3)
    assert ("on_success", ok.job_id, "completed", 6) in EVENTS
    assert ("on_failure", bad.job_id, "failed", "ValueError('kaboom')") in EVENTS
    assert ("on_stopped", slow.job_id, "cancelled") in EVENTS


async def _running(job_id: str) -> bool:
    return (await naq.get_job(job_id)).status == naq.JobStatus.RUNNING


async def test_a_failing_callback_is_logged_and_the_outcome_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "naq.worker")
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(hook_jobs.double, 1, on_success=hook_jobs.failing_callback)
        assert await job.result(timeout=10) == 2
        await wait_until(lambda: "callback tests.hook_jobs:failing_callback" in caplog.text)
        assert (await job.info()).status == naq.JobStatus.COMPLETED


def test_a_callback_that_cannot_travel_is_refused_by_name() -> None:
    with pytest.raises(naq.SerializationError, match="on_success=<function"):
        naq.Queue(Q).make_job(jobs.add, (1, 2), options={"on_success": lambda i, r: None})
    with pytest.raises(naq.SerializationError, match="on_failure='nocolon'"):
        naq.Queue(Q).make_job(jobs.add, (1, 2), options={"on_failure": "nocolon"})


# -- max_jobs ------------------------------------------------------------------------------


async def test_max_jobs_stops_the_worker_and_leaves_the_rest_pending() -> None:
    async with Queue(Q) as queue:
        batch = [await queue.enqueue(jobs.add, i, 0) for i in range(8)]
        worker = naq.Worker(Q, concurrency=2, max_jobs=3, install_signal_handlers=False)
        await asyncio.wait_for(worker.run(), 20)
        assert worker.processed == 3
        async with running_worker(Q):
            values = [await job.result(timeout=10) for job in batch]
    assert values == list(range(8))


async def test_a_task_registration_defaults_its_callbacks() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue("hooks.tripled", 5)
        assert await job.result(timeout=10) == 15
        await wait_until(lambda: EVENTS)
    assert EVENTS == [("on_success", job.job_id, "completed", 15)]


# -- the CLI's --app and --middleware ------------------------------------------------------


async def test_cli_app_runs_the_worker_defined_in_code_with_flags_over_it(nats_url: str) -> None:
    async with Queue("hooks-app") as queue:
        job = await queue.enqueue(hook_jobs.async_state_job)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "naq", "worker", "--app", "tests.hook_jobs:app",
            "--nats-url", nats_url, "--burst", "--name", "from-cli",
            "--middleware", "naq.middleware:JobLogMiddleware",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        # The app's lifespan, the CLI's name and middleware.
        assert await job.result(timeout=5) == "pool-of-from-cli"
    assert f"job_id={job.job_id} function=tests.hook_jobs:async_state_job" in err.decode()


async def test_cli_app_takes_a_settings_object(nats_url: str) -> None:
    async with Queue("hooks-settings") as queue:
        job = await queue.enqueue(jobs.add, 2, 3)
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "naq", "worker", "--app", "tests.hook_jobs:AppSettings",
             "--nats-url", nats_url],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert await job.result(timeout=5) == 5
    assert "on hooks-settings (concurrency 2)" in out.stderr


def test_cli_bad_app_and_middleware_paths_are_one_line_naming_them(nats_url: str) -> None:
    for flag, value, expected in [
        ("--app", "tests.hook_jobs:nothing", "--app 'tests.hook_jobs:nothing'"),
        ("--app", "nocolon", "must look like 'package.module:name'"),
        ("--middleware", "no_such_module_x:M", "cannot import 'no_such_module_x'"),
    ]:
        out = subprocess.run(
            [sys.executable, "-m", "naq", "worker", Q, flag, value, "--nats-url", nats_url],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.returncode == 1, (flag, value, out.stderr)
        assert expected in out.stderr and "Traceback" not in out.stderr


async def test_max_memory_stops_the_worker_gracefully(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "naq.worker")
    # Any Python process is past 1 MB: the first look stops it.
    worker = naq.Worker(Q, max_memory=1, install_signal_handlers=False)
    await asyncio.wait_for(worker.run(), 10)
    assert "past max_memory 1 MB, stopping" in caplog.text


async def test_max_jobs_takes_no_job_past_its_last() -> None:
    # Any job taken past the last would be handed back, or, on its way as the worker stops,
    # wait out the ack wait before another worker could run it.
    q = "hooks-last"
    async with Queue(q) as queue:
        for i in range(10):
            await queue.enqueue(jobs.add, i, 0)
        worker = naq.Worker(q, concurrency=10, max_jobs=3, install_signal_handlers=False)
        await asyncio.wait_for(worker.run(), 20)
        consumer = await (await queue._broker()).queue_consumer(q)
    assert worker.processed == 3
    assert consumer.delivered.consumer_seq == 3
    assert consumer.num_pending == 7 and consumer.num_ack_pending == 0
