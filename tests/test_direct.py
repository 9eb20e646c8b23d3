"""Direct subscriptions and the connection's ack deadline, against a real server."""

from __future__ import annotations

import asyncio
import logging

import nats
import pytest

import naq.transport.publisher
from naq.errors import NaqConnectionError
from naq.settings import Settings
from naq.transport.connection import get_connection
from naq.transport.direct import subscribe_direct


async def test_messages_reach_the_handler_in_order(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: list[bytes] = []
        done = asyncio.Event()

        def handler(msg: nats.aio.msg.Msg) -> None:
            got.append(msg.data)
            if len(got) == 2000:
                done.set()

        sub = await subscribe_direct(nc, "direct.order", handler)
        for index in range(2000):
            await nc.publish("direct.order", b"%04d" % index + b"x" * 1020)
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()
    finally:
        await nc.close()
    assert [data[:4] for data in got] == [b"%04d" % i for i in range(2000)]


async def test_a_failing_handler_is_logged_and_the_connection_goes_on(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await nats.connect(nats_url)
    try:
        good = asyncio.Event()

        def handler(msg: nats.aio.msg.Msg) -> None:
            if msg.data == b"bad":
                raise ValueError("boom")
            good.set()

        await subscribe_direct(nc, "direct.fail", handler)
        with caplog.at_level(logging.ERROR, logger="naq.direct"):
            await nc.publish("direct.fail", b"bad")
            await nc.publish("direct.fail", b"good")
            await asyncio.wait_for(good.wait(), 10)
        assert nc.is_connected
    finally:
        await nc.close()
    assert "handling a message on direct.fail failed" in caplog.text


async def test_a_publish_never_acknowledged_fails_at_its_deadline(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(naq.transport.publisher, "ACK_DEADLINE", 0.5)
    monkeypatch.setattr(naq.transport.publisher, "ACK_SWEEP_INTERVAL", 0.1)
    listener = await nats.connect(nats_url)
    # A plain subscriber takes the message and never answers: no ack will ever come.
    await listener.subscribe("direct.silent")
    await listener.flush()
    try:
        connection = await get_connection(Settings().replace(nats_url=nats_url))
        future = connection.publish_nowait("direct.silent", b"x")
        with pytest.raises(NaqConnectionError, match="did not acknowledge a publish within 0.5s"):
            await asyncio.wait_for(future, 5)
        assert not connection.publisher._acks
    finally:
        await listener.close()
