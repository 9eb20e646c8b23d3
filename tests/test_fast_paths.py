"""naq's fast paths into nats-py (naq.transport.frames, .direct, .nats_import): on under the
nats-py releases pyproject.toml admits, off under NAQ_PLAIN_CLIENT=1, the same messages either way.

A nats-py release that moved the internals they rely on fails here, not silently slower.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys

import nats
import pytest
from packaging.requirements import Requirement

from naq.errors import ConfigurationError
from naq.settings import Settings
from naq.transport.connection import get_connection
from naq.transport.direct import is_direct, subscribe_direct
from naq.transport.frames import Framer


def nats_py_requirement() -> Requirement:
    for line in importlib.metadata.requires("naq") or []:
        requirement = Requirement(line)
        if requirement.name == "nats-py" and requirement.marker is None:
            return requirement
    raise AssertionError("naq does not require nats-py")


def test_nats_py_is_bounded_above_and_the_installed_release_is_admitted() -> None:
    requirement = nats_py_requirement()
    assert any(spec.operator == "<" for spec in requirement.specifier), requirement
    installed = importlib.metadata.version("nats-py")
    assert requirement.specifier.contains(installed), (installed, str(requirement))


async def test_the_fast_paths_are_taken_under_the_pinned_nats_py(nats_url: str) -> None:
    connection = await get_connection(Settings.from_env({}).replace(nats_url=nats_url))
    assert connection.fast_paths, f"nats-py {importlib.metadata.version('nats-py')}"
    assert connection.publisher._framer.lean
    nc = await nats.connect(nats_url)
    try:
        assert Framer(nc).lean
        sub = await subscribe_direct(nc, "fast.direct", lambda msg: None)
        assert is_direct(sub)
        await sub.unsubscribe()
    finally:
        await nc.close()


async def test_a_plain_client_takes_none_of_them(nats_url: str, naq_env: str) -> None:
    settings = Settings.from_env({}).replace(nats_url=nats_url, plain_client=True)
    connection = await get_connection(settings)
    assert not connection.fast_paths
    assert not connection.publisher._framer.lean
    # The plain connection is its own, not the fast one of the same server.
    fast = await get_connection(settings.replace(plain_client=False))
    assert fast is not connection and fast.fast_paths
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"{naq_env}_fast"
    await js.add_stream(name=stream, subjects=[f"{naq_env}.fast"])
    try:
        # A publish and its ack travel through nats-py's own publish and callback task.
        acks = [connection.publish_nowait(f"{naq_env}.fast", b"%d" % i) for i in range(3)]
        assert [(await ack).seq for ack in acks] == [1, 2, 3]
        assert not Framer(nc, plain=True).lean
        sub = await subscribe_direct(nc, "fast.plain", lambda msg: None, plain=True)
        assert not is_direct(sub)
        await sub.unsubscribe()
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_plain_and_direct_subscriptions_hand_on_the_same_messages(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        got: dict[bool, list[bytes]] = {False: [], True: []}
        done = {plain: asyncio.Event() for plain in got}

        def handler(plain: bool, msg: nats.aio.msg.Msg) -> None:
            if msg.data == b"bad":
                raise ValueError("boom")  # logged, never passed to the connection
            got[plain].append(msg.data)
            if len(got[plain]) == 100:
                done[plain].set()

        for plain in got:
            await subscribe_direct(
                nc, f"fast.same.{plain}", lambda msg, plain=plain: handler(plain, msg), plain=plain
            )
        for index in range(100):
            for plain in got:
                if index == 50:
                    await nc.publish(f"fast.same.{plain}", b"bad")
                await nc.publish(f"fast.same.{plain}", b"%03d" % index)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 10)
        assert nc.is_connected
    finally:
        await nc.close()
    assert got[True] == got[False] == [b"%03d" % i for i in range(100)]


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_naq_plain_client_is_read_as_a_flag(raw: str, value: bool) -> None:
    assert Settings.from_env({"NAQ_PLAIN_CLIENT": raw}).plain_client is value


def test_a_bad_naq_plain_client_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="NAQ_PLAIN_CLIENT='maybe' is not 1 or 0"):
        Settings.from_env({"NAQ_PLAIN_CLIENT": "maybe"})


@pytest.mark.parametrize(("plain", "deferred"), [("0", True), ("1", False)])
def test_a_plain_client_imports_nats_py_as_it_is(plain: str, deferred: bool) -> None:
    probe = "import sys, naq; print(type(sys.modules['nats.aio.transport'].aiohttp).__name__)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=dict(os.environ, NAQ_PLAIN_CLIENT=plain),
    ).stdout.strip()
    assert out == ("_Deferred" if deferred else "module")
