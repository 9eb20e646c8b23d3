"""Jobs, lifespans, middleware and callbacks the worker-hook tests run (importable by name)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import naq

#: What the hooks and callbacks below saw, in order (tests clear it).
EVENTS: list[tuple[Any, ...]] = []


@contextlib.asynccontextmanager
async def lifespan(worker: naq.Worker) -> AsyncIterator[dict[str, Any]]:
    EVENTS.append(("enter", worker.name))
    yield {"pool": f"pool-of-{worker.name}", "opened": True}
    EVENTS.append(("exit", worker.name))


@contextlib.asynccontextmanager
async def broken_lifespan(worker: naq.Worker) -> AsyncIterator[dict[str, Any]]:
    raise RuntimeError("database unreachable")
    yield {}  # pragma: no cover


async def async_state_job() -> str:
    return str(naq.worker_state()["pool"])


def sync_state_job() -> str:
    return str(naq.worker_state()["pool"])


async def slow_state_job(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    # Still open: the lifespan is left only after the last job ended.
    return bool(naq.worker_state()["opened"]) and ("exit",) not in [e[:1] for e in EVENTS]


def double(x: int) -> int:
    return 2 * x


def explode() -> None:
    raise ValueError("kaboom")


class Recorder:
    """Records each hook it has, tagged with its name."""

    def __init__(self, tag: str, fail_before: int = 0) -> None:
        self.tag = tag
        self.fail_before = fail_before

    def before_job(self, job: naq.JobContext) -> None:
        EVENTS.append((self.tag, "before_job", job.id, job.function, job.args, job.attempt))
        if self.fail_before > 0:
            self.fail_before -= 1
            raise PermissionError(f"{self.tag} refused")

    async def after_job(self, job: naq.JobContext, outcome: naq.JobOutcome) -> None:
        EVENTS.append(
            (self.tag, "after_job", job.id, str(outcome.status), outcome.result, outcome.will_retry)
        )

    def on_retry(self, job: naq.JobContext, error: BaseException) -> None:
        EVENTS.append((self.tag, "on_retry", job.id, repr(error)))

    async def on_failure(self, job: naq.JobContext, error: BaseException) -> None:
        EVENTS.append((self.tag, "on_failure", job.id, repr(error)))

    def on_worker_start(self, worker: naq.Worker) -> None:
        EVENTS.append((self.tag, "on_worker_start", worker.name, naq.worker_state().get("pool")))

    async def on_worker_stop(self, worker: naq.Worker) -> None:
        EVENTS.append((self.tag, "on_worker_stop", worker.name))


class Broken(naq.Middleware):
    """after_job raises: logged, and the job's outcome stands."""

    def after_job(self, job: naq.JobContext, outcome: naq.JobOutcome) -> None:
        raise RuntimeError("hook bug")


class SlowBefore(naq.Middleware):
    async def before_job(self, job: naq.JobContext) -> None:
        await asyncio.sleep(5)


def on_success(info: naq.JobInfo, result: Any) -> None:
    EVENTS.append(("on_success", info.job_id, str(info.status), result))


async def on_failure(info: naq.JobInfo, error: BaseException) -> None:
    EVENTS.append(("on_failure", info.job_id, str(info.status), repr(error)))


def on_stopped(info: naq.JobInfo) -> None:
    EVENTS.append(("on_stopped", info.job_id, str(info.status)))


def failing_callback(info: naq.JobInfo, result: Any) -> None:
    raise RuntimeError("callback bug")


@naq.task(name="hooks.tripled", on_success=on_success)
def tripled(x: int) -> int:
    return 3 * x


#: A worker defined in code, for ``naq worker --app tests.hook_jobs:app``.
app = naq.Worker("hooks-app", concurrency=3, lifespan=lifespan)


class AppSettings:
    """A settings object for ``--app``: Worker options as attributes."""

    queues = ["hooks-settings"]
    concurrency = 2
    burst = True
