"""Running job functions: sync ones in threads, their outcomes handed back in batches."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from naq.worker.execution import Executor, JobTimeout

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def square_or_fail(n: int) -> int:
    if n % 7 == 0:
        raise ValueError(f"no {n}")
    return n * n


async def test_many_sync_calls_each_get_their_own_outcome() -> None:
    executor = Executor(concurrency=16)
    try:
        outcomes = await asyncio.gather(
            *(executor.run(square_or_fail, [n], {}, None) for n in range(1, 301)),
            return_exceptions=True,
        )
    finally:
        executor.shutdown()
    for n, outcome in enumerate(outcomes, start=1):
        if n % 7 == 0:
            assert isinstance(outcome, ValueError) and str(outcome) == f"no {n}"
        else:
            assert outcome == n * n


async def test_a_sync_call_sees_the_callers_context_in_its_thread() -> None:
    executor = Executor(concurrency=2)
    request_id.set("job-42")
    try:
        seen = await executor.run(
            lambda: (request_id.get(), threading.current_thread().name), [], {}, None
        )
    finally:
        executor.shutdown()
    assert seen[0] == "job-42"
    assert seen[1].startswith("naq-job")


async def test_a_timed_out_sync_call_frees_its_slot_and_its_late_outcome_is_dropped() -> None:
    executor = Executor(concurrency=1)
    release = threading.Event()

    def stuck() -> str:
        release.wait(10)
        return "late"

    try:
        with pytest.raises(JobTimeout, match="0.2s"):
            await executor.run(stuck, [], {}, 0.2)
        # The one thread is still stuck, yet a new call runs at once (a fresh pool).
        started = time.monotonic()
        assert await executor.run(square_or_fail, [3], {}, 5) == 9
        assert time.monotonic() - started < 2
        release.set()
        # The stuck call's outcome arrives for a future nobody awaits: nothing breaks.
        assert await executor.run(square_or_fail, [4], {}, 5) == 16
    finally:
        release.set()
        executor.shutdown()


def raise_timeout() -> None:
    raise TimeoutError("boom")


async def async_raise_timeout() -> None:
    await asyncio.sleep(0)
    raise TimeoutError("boom")


def returns_a_failing_awaitable() -> object:
    return async_raise_timeout()


@pytest.mark.parametrize("timeout", [None, 5.0])
@pytest.mark.parametrize("func", [raise_timeout, async_raise_timeout, returns_a_failing_awaitable])
async def test_a_functions_own_timeout_error_is_raised_as_it_is(
    func: object, timeout: float | None
) -> None:
    # On 3.11+ asyncio.TimeoutError is the builtin TimeoutError: the function's own must not
    # pass for the expiry of its timeout (nor break the handling when it has none).
    executor = Executor(concurrency=1)
    try:
        with pytest.raises(TimeoutError, match="^boom$") as caught:
            await executor.run(func, [], {}, timeout)  # type: ignore[arg-type]
    finally:
        executor.shutdown()
    assert not isinstance(caught.value, JobTimeout)


async def test_an_async_call_past_its_timeout_is_a_job_timeout() -> None:
    executor = Executor(concurrency=1)
    try:
        with pytest.raises(JobTimeout, match="0.1s"):
            await executor.run(asyncio.sleep, [5], {}, 0.1)
    finally:
        executor.shutdown()
