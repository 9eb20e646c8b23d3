"""A failed job's stored traceback is the user's: it starts at the job's function, holds no frame
of naq's own package (nor the asyncio machinery naq runs jobs with), keeps the exception chain
and ends with the error line. Async jobs, sync jobs (run in a thread) and timeouts."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

import naq
from naq import Queue
from naq.worker.tracebacks import job_traceback
from tests.helpers import read_dead_letters, running_worker

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "tracebacks"
NAQ_DIR = str(Path(naq.__file__).resolve().parent) + "/"
THIS_FILE = str(Path(__file__).resolve())


def _parse(key: str) -> int:
    raise KeyError(key)


def _validate(key: str) -> None:
    try:
        _parse(key)
    except KeyError as exc:
        raise ValueError(f"bad key {key!r}") from exc


def sync_job(key: str) -> None:
    """Fails two calls deep, with a cause."""
    _validate(key)


async def async_job(key: str) -> None:
    await asyncio.sleep(0)
    _validate(key)


def sleepy(seconds: float) -> None:
    time.sleep(seconds)


def _frames(trace: str) -> list[tuple[str, str]]:
    """(file, function) of every frame line of ``trace``, in order."""
    return re.findall(r'^  File "([^"]+)", line \d+, in (\S+)$', trace, flags=re.MULTILINE)


def assert_users_traceback(trace: str | None, job: str) -> None:
    assert trace is not None
    frames = _frames(trace)
    assert frames, trace
    # The job's own traceback (the last in the chain) starts at the job's function.
    last = trace.rsplit("direct cause of the following exception:", 1)[-1]
    assert _frames(last)[0] == (THIS_FILE, job), trace
    assert [name for _, name in _frames(last)] == [job, "_validate"], trace
    assert not [file for file, _ in frames if file.startswith(NAQ_DIR)], trace
    assert "asyncio" not in trace and "concurrent" not in trace, trace
    # The chain: the cause first, with its own frames, then the job's error.
    assert trace.startswith("Traceback (most recent call last):\n"), trace
    assert "KeyError: 'k1'" in trace and "in _parse" in trace, trace
    assert trace.rstrip("\n").splitlines()[-1] == "ValueError: bad key 'k1'", trace


@pytest.mark.parametrize("job", [sync_job, async_job])
async def test_the_stored_traceback_starts_at_the_users_function(
    nats_url: str, job: object
) -> None:
    async with Queue(Q) as queue, running_worker(Q):
        enqueued = await queue.enqueue(job, "k1")
        with pytest.raises(naq.JobExecutionError) as caught:
            await enqueued.result(timeout=10)
        info = await naq.get_job(enqueued.job_id)
    name = getattr(job, "__name__", "")
    assert_users_traceback(caught.value.remote_traceback, name)
    assert info.traceback == caught.value.remote_traceback
    assert info.error == "ValueError: bad key 'k1'"
    letters = await read_dead_letters(nats_url, Q)
    assert [letter.traceback for letter in letters] == [info.traceback]


async def test_a_timeout_says_it_timed_out() -> None:
    async with Queue(Q) as queue, running_worker(Q):
        job = await queue.enqueue(sleepy, 1.0, timeout=0.2)
        with pytest.raises(naq.JobExecutionError) as caught:
            await job.result(timeout=10)
    trace = caught.value.remote_traceback or ""
    assert trace.rstrip("\n") == "JobTimeout: job exceeded its timeout of 0.2s"


def test_naq_frames_are_left_out_wherever_they_are() -> None:
    """A job calling into naq: naq's frames go, the user's before and after stay."""

    def callback() -> None:
        raise RuntimeError("from the user's callback")

    def job() -> None:
        # naq.sync runs the coroutine (on its own loop): naq frames between the user's.
        naq.sync.run_sync(_calls_back(callback))

    try:
        job()
    except RuntimeError as exc:
        trace = job_traceback(exc)
    names = [name for _, name in _frames(trace)]
    assert names[0] == "test_naq_frames_are_left_out_wherever_they_are"
    assert "job" in names and "callback" in names and "_calls_back" in names
    assert not [file for file, _ in _frames(trace) if file.startswith(NAQ_DIR)], trace
    assert "concurrent" not in trace, trace  # the future naq.sync waited on
    assert trace.splitlines()[-1] == "RuntimeError: from the user's callback"


async def _calls_back(callback: object) -> None:
    assert callable(callback)
    callback()
