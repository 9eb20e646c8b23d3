"""Starting on a cluster that is still electing leaders: retried, not fatal.

What a settling cluster answers (timeouts, "temporarily unavailable") is seen for real in
test_cluster.py's start-together test; these check the policy around it without a server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS

from naq.broker import Broker
from naq.errors import NaqConnectionError, NaqException
from naq.models import status_of
from naq.settings import Settings
from naq.store import JobStore
from naq.transport.connection import Connection
from naq.transport.errors import ERR_TEMPORARILY_UNAVAILABLE, is_settling
from naq.worker import liveness as liveness_module
from naq.worker.liveness import Liveness
from naq.worker.state import WorkerState


def failing_then(failures: list[Exception], value: str) -> tuple[Callable[[], object], list[int]]:
    """An attempt that raises each of ``failures`` in turn, then returns ``value``."""
    calls = [0]

    async def attempt() -> str:
        calls[0] += 1
        if failures:
            raise failures.pop(0)
        return value

    return attempt, calls


def test_timeouts_and_elections_are_settling_other_errors_are_not() -> None:
    assert is_settling(nats.errors.TimeoutError())
    assert is_settling(asyncio.TimeoutError())
    assert is_settling(
        nats.js.errors.ServiceUnavailableError(code=503, err_code=ERR_TEMPORARILY_UNAVAILABLE)
    )
    assert not is_settling(nats.js.errors.ServiceUnavailableError(code=503, err_code=10039))
    # Only ever asked while ensuring a stream, consumer or bucket exists (which the
    # caller then creates): "not found" there is a stream another process just made.
    assert is_settling(nats.js.errors.NotFoundError(code=404, err_code=10059))
    assert not is_settling(nats.js.errors.NotFoundError(code=404, err_code=10014))
    # A forming cluster whose servers have not all joined yet.
    assert is_settling(nats.js.errors.BadRequestError(code=400, err_code=10005))
    assert not is_settling(nats.errors.NoRespondersError())


async def test_a_replicated_setup_retries_while_the_cluster_settles() -> None:
    connection = Connection(NATS(), Settings(replicas=3))
    attempt, calls = failing_then(
        [
            nats.errors.TimeoutError(),
            nats.js.errors.ServiceUnavailableError(code=503, err_code=ERR_TEMPORARILY_UNAVAILABLE),
        ],
        "ready",
    )
    assert await connection.resources._settled("stream s", attempt) == "ready"  # type: ignore[arg-type]
    assert calls == [3]


async def test_a_single_server_reports_a_timeout_at_once() -> None:
    connection = Connection(NATS(), Settings(replicas=1))
    attempt, calls = failing_then([nats.errors.TimeoutError()], "ready")
    with pytest.raises(NaqConnectionError, match="did not answer in time"):
        await connection.resources._settled("stream s", attempt)  # type: ignore[arg-type]
    assert calls == [1]


async def test_an_error_that_is_not_an_election_is_not_retried() -> None:
    connection = Connection(NATS(), Settings(replicas=3))
    refused = nats.js.errors.BadRequestError(code=400, err_code=10058, description="bad config")
    attempt, calls = failing_then([refused], "ready")
    with pytest.raises(NaqException, match="bad config"):
        await connection.resources._settled("stream s", attempt)  # type: ignore[arg-type]
    assert calls == [1]


async def test_a_missed_heartbeat_is_retried_soon_not_a_whole_interval_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(liveness_module, "HEARTBEAT_RETRY", 0.01)
    settings = Settings()
    state = WorkerState(
        settings=settings,
        name="w",
        queues=["q"],
        concurrency=1,
        broker=(broker := Broker(Connection(NATS(), settings), settings)),
        store=JobStore(broker),
        loop=asyncio.get_running_loop(),
    )
    liveness = Liveness(
        state, status_of, heartbeat_interval=3600, worker_ttl=7200, started_at=time.time()
    )
    beats: list[bool] = []
    third = asyncio.Event()

    async def heartbeat() -> None:
        beats.append(len(beats) >= 2)  # the first two beats fail, the third lands
        if len(beats) == 3:
            third.set()
        if not beats[-1]:
            raise NaqConnectionError("no leader yet")

    monkeypatch.setattr(liveness, "heartbeat", heartbeat)
    loop_task = asyncio.create_task(liveness.heartbeat_loop(beating=False))
    try:
        # With the interval's 3600 s between tries this would time out.
        await asyncio.wait_for(third.wait(), timeout=10)
    finally:
        loop_task.cancel()
    assert beats == [False, False, True]
