"""``naq dashboard`` serves the real TUI over HTTP + websocket (textual-serve)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

import naq
from naq.server import free_port
from tests import jobs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def dashboard(nats_url: str) -> str:
    """A running ``naq dashboard`` on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "naq", "dashboard", "--port", str(port), "--nats-url", nats_url],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # The dashboard runs each browser session's app as a child: stop the whole group.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _get_index(base: str) -> str:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(base + "/") as response:
                    assert response.status == 200
                    return await response.text()
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_dashboard_serves_the_live_tui(dashboard: str, nats_url: str) -> None:
    await naq.enqueue(jobs.add, 1, 2, queue_name="dash")
    page = await _get_index(dashboard)
    assert "naq" in page and "/ws" in page
    screen = ""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(dashboard + "/ws?width=120&height=36") as ws:
            deadline = time.monotonic() + 30
            # The browser side of textual-serve gets the app's terminal output on the socket.
            while time.monotonic() < deadline and not (
                "Queues" in screen and "connected" in screen and "dash" in screen
            ):
                try:
                    message = await ws.receive(timeout=deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
                if message.type == aiohttp.WSMsgType.BINARY:
                    screen += message.data.decode("utf-8", errors="replace")
                elif message.type == aiohttp.WSMsgType.TEXT:
                    screen += message.data
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
    assert "Queues" in screen, screen[-2000:]
    assert "connected" in screen
    assert "dash" in screen  # the queue we enqueued on, shown live
