"""What nats-py raises reaches naq's callers as naq's errors, mapped in the transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
import pytest

import naq
from naq.broker import Broker
from naq.errors import NaqConnectionError, NaqException
from naq.server import EmbeddedServer
from naq.settings import Settings, get_settings
from naq.transport import (
    JetStreamError,
    NotFound,
    RevisionConflict,
    open_connection,
)
from naq.transport.errors import ERR_WRONG_LAST_SEQUENCE, map_error
from tests import jobs

SETTINGS = Settings(nats_url="nats://127.0.0.1:4999")
#: A compare-and-set lost, as a publish's API error.
CAS_LOST = nats.js.errors.BadRequestError(code=400, err_code=ERR_WRONG_LAST_SEQUENCE)


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (nats.errors.ConnectionClosedError(), NaqConnectionError),
        (nats.errors.NoServersError(), NaqConnectionError),
        (nats.errors.TimeoutError(), NaqConnectionError),
        (nats.errors.NoRespondersError(), NaqConnectionError),
        (nats.js.errors.ServiceUnavailableError(code=503), NaqConnectionError),
        (nats.js.errors.KeyWrongLastSequenceError(description="wrong last"), RevisionConflict),
        (
            nats.js.errors.BadRequestError(code=400, err_code=ERR_WRONG_LAST_SEQUENCE),
            RevisionConflict,
        ),
        (nats.js.errors.KeyNotFoundError(), NotFound),
        (nats.js.errors.NotFoundError(code=404, err_code=10059), NotFound),
        (nats.js.errors.BadRequestError(code=400, err_code=10058), JetStreamError),
        (nats.errors.OutboundBufferLimitError(), NaqException),
    ],
)
def test_each_nats_error_has_its_naq_error(raised: Exception, kind: type[NaqException]) -> None:
    mapped = map_error(raised, SETTINGS)
    assert type(mapped) is kind
    assert isinstance(mapped, NaqException)


def test_a_refused_request_keeps_its_codes_and_a_naq_error_stays_as_it_is() -> None:
    mapped = map_error(nats.js.errors.BadRequestError(code=400, err_code=10058), SETTINGS)
    assert isinstance(mapped, JetStreamError)
    assert (mapped.code, mapped.err_code) == (400, 10058)
    assert "10058" in str(mapped)
    own = NaqConnectionError("down")
    assert map_error(own, SETTINGS) is own


def test_a_connection_error_names_the_servers() -> None:
    assert "nats://127.0.0.1:4999" in str(map_error(nats.errors.TimeoutError(), SETTINGS))


async def test_every_operation_on_a_closed_connection_is_a_connection_error(nats_url: str) -> None:
    settings = get_settings().replace(plain_client=False)
    connection = await open_connection(settings)
    broker = Broker(connection, settings)
    await broker.ensure_consumer("q")
    await broker.ensure_failed_stream()
    status = await broker.status_kv()
    await connection.close()

    async def follow() -> None:
        async with broker.follow_statuses():
            pass

    async def post() -> None:
        connection.post(broker.names.queue_subject("q"), b"x")

    async def publish_nowait() -> None:
        connection.publish_nowait(broker.names.queue_subject("q"), b"x")

    operations: dict[str, Callable[[], Awaitable[Any]]] = {
        "queue_consumer": lambda: broker.queue_consumer("q"),
        "queue_consumers": broker.queue_consumers,
        "subject_counts": lambda: broker.subject_counts(broker.names.jobs_stream, ">"),
        "read_queue": lambda: broker.read_queue(broker.names.queue_subject("q")),
        "read_bucket": lambda: broker.read_bucket(broker.names.status_bucket),
        "delete_dead_letter": lambda: broker.delete_dead_letter(1),
        "purge_subject": lambda: broker.purge_subject(broker.names.failed_stream, ">"),
        "follow_statuses": follow,
        "bucket get": lambda: status.get("job"),
        "bucket put": lambda: status.put("job", b"x"),
        "bucket update": lambda: status.update("job", b"x", last=1),
        "request": lambda: connection.request("nobody.listens", b"", timeout=1),
        "subscribe": lambda: connection.subscribe("any", _ignore),
        "post": post,
        "publish_nowait": publish_nowait,
    }
    failed = {}
    for name, operation in operations.items():
        try:
            await operation()
        except NaqConnectionError:
            continue
        except BaseException as exc:
            failed[name] = repr(exc)
        else:
            failed[name] = "no error"
    assert failed == {}


async def _ignore(_msg: Any) -> None:
    return None


@pytest.mark.timeout(60)
async def test_a_killed_server_is_a_connection_error_to_every_caller(
    fresh_server: EmbeddedServer,
) -> None:
    job = await naq.Queue("down").enqueue(jobs.add, 1, 2)
    assert (await naq.get_job(job.job_id)).status == "pending"
    fresh_server.kill()
    # The shared connection is reconnecting: requests go unanswered, not refused.
    with pytest.raises(NaqConnectionError, match="did not answer in time"):
        async for _ in naq.watch_jobs():
            pass
    with pytest.raises(NaqConnectionError):
        await naq.get_job(job.job_id)
