"""The pull consumer's two kinds of request, against a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from naq import Queue
from naq.broker import Broker
from naq.settings import get_settings
from naq.transport import Msg
from naq.transport.puller import Puller
from tests import jobs
from tests.held_link import HeldLink
from tests.helpers import wait_until

pytestmark = pytest.mark.usefixtures("nats_url")


@dataclass
class Pulled:
    """A puller on queue ``q`` and what it has seen."""

    puller: Puller
    queue: Queue
    delivered: list[Msg] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    filled: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def pulled() -> AsyncIterator[Pulled]:
    broker = await Broker.connect(get_settings())
    consumer = await broker.ensure_consumer("q")
    delivered: list[Msg] = []
    changed, filled = asyncio.Event(), asyncio.Event()
    puller = Puller(
        broker.connection,
        broker.names.jobs_stream,
        consumer,
        deliver=delivered.append,
        on_change=changed.set,
        on_filled=filled.set,
    )
    await puller.start()
    async with Queue("q") as queue:
        yield Pulled(puller, queue, delivered, changed, filled)
        await puller.stop()


async def ask_until_delivered(pulled: Pulled, batch: int, held: int) -> None:
    """Ask for ``batch`` jobs until the queue's ``held`` jobs (or ``batch``) have come: a
    server under load may answer an ask on a new consumer before it sees jobs just stored
    (it comes up short with the jobs still pending; a worker would watch next)."""
    want = min(batch, held)
    for _ in range(50):
        pulled.changed.clear()
        pulled.filled.clear()
        await pulled.puller.ask(batch - len(pulled.delivered))
        done = asyncio.ensure_future(pulled.filled.wait())
        short = asyncio.ensure_future(pulled.changed.wait())
        await asyncio.wait({done, short}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        short.cancel()
        if len(pulled.delivered) >= want:
            return
    raise AssertionError(f"{len(pulled.delivered)} of {want} jobs came")


async def test_an_ask_takes_what_the_queue_holds_and_says_it_came_up_short(
    pulled: Pulled,
) -> None:
    await pulled.queue.enqueue_many([(jobs.noop, (), {}) for _ in range(3)])
    await ask_until_delivered(pulled, 5, held=3)
    assert len(pulled.delivered) == 3
    assert pulled.puller.empty_at is not None
    assert pulled.puller.outstanding == 0


async def test_an_ask_answered_in_full_says_so(pulled: Pulled) -> None:
    await pulled.queue.enqueue_many([(jobs.noop, (), {}) for _ in range(3)])
    await ask_until_delivered(pulled, 2, held=3)
    assert pulled.filled.is_set()
    assert len(pulled.delivered) == 2
    assert pulled.puller.empty_at is None
    assert pulled.puller.outstanding == 0


async def test_a_called_off_watch_takes_no_more_jobs(pulled: Pulled) -> None:
    puller = pulled.puller
    await puller.watch(5)
    assert puller.watching == 5
    puller.cancel_watches()
    assert puller.watching == 0
    await asyncio.sleep(0)  # a yield, not a wait: the drain sends its unsubscribe
    await puller._connection.nc.flush()  # the server has seen it
    job = await pulled.queue.enqueue(jobs.noop)
    # A job sent to the called-off watch would be lost to this puller until the ack wait.
    await puller.watch(1, expires=4.0)
    await asyncio.wait_for(pulled.filled.wait(), 5)
    assert [msg.data for msg in pulled.delivered] == [job.serialize()]


@pytest.mark.parametrize("ending", ["stopped", "presumed lost"])
async def test_a_job_sent_to_a_request_as_it_ends_still_arrives(nats_url: str, ending: str) -> None:
    """The server sends a job to a watch just as the puller ends it (the job is on the
    wire, the server has not seen the unsubscribe): the job reaches ``deliver``, to be
    run or handed back, instead of waiting out the ack wait unseen."""
    async with HeldLink(nats_url) as link:
        broker = await Broker.connect(get_settings().replace(nats_url=link.url))
        consumer = await broker.ensure_consumer("held")
        delivered: list[Msg] = []
        arrived = asyncio.Event()

        def deliver(msg: Msg) -> None:
            delivered.append(msg)
            arrived.set()

        puller = Puller(
            broker.connection, broker.names.jobs_stream, consumer, deliver, lambda: None
        )
        await puller.start()
        await puller.watch(1)
        server = await Broker.connect(get_settings())

        async def consumer_shows(field: str) -> bool:
            return bool(getattr(await server.queue_consumer("held"), field))

        await wait_until(lambda: consumer_shows("num_waiting"))
        link.hold()
        async with Queue("held") as queue:
            job = await queue.enqueue(jobs.noop)
        await wait_until(lambda: consumer_shows("num_ack_pending"))  # sent, held in the link
        if ending == "stopped":
            stopping = asyncio.ensure_future(puller.stop())
        else:
            for request in puller._requests.values():
                request.heard_at -= 60  # its heartbeats late past the silence
            puller.expire_lost()
            assert puller.outstanding == 0
        await link.client_sent(b"UNSUB")
        link.release()
        await asyncio.wait_for(arrived.wait(), 5)
        assert [msg.data for msg in delivered] == [job.serialize()]
        if ending == "stopped":
            await stopping
