"""naq imports nats-py without aiohttp, which loads only when a WebSocket transport needs it."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
import naq
import nats.aio.transport as transport
print("after naq:", "aiohttp" in sys.modules)
session = transport.aiohttp.ClientSession
print("class:", session.__module__ + "." + session.__qualname__)
import aiohttp
print("real:", aiohttp.ClientSession is session, type(sys.modules["aiohttp"]).__name__)
"""


def test_aiohttp_loads_on_first_use_only() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=dict(os.environ, NAQ_PLAIN_CLIENT="0"),  # the deferral is a fast path
    ).stdout.splitlines()
    assert out == [
        "after naq: False",
        "class: aiohttp.client.ClientSession",
        "real: True module",
    ]


def test_a_program_that_imported_nats_first_is_left_alone() -> None:
    probe = "import nats, sys; import naq; print(type(sys.modules['nats.aio.transport'].aiohttp))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "<class 'module'>"
