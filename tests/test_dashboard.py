"""``naq dashboard`` serves the real TUI over HTTP + websocket (textual-serve), to holders of
its token only, to a bounded number of tabs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

import naq
from naq.server import free_port
from naq_tui.dashboard import COOKIE
from tests import jobs
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token-for-tests"


class Dashboard:
    """A running ``naq dashboard`` process."""

    def __init__(self, nats_url: str, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "naq", "dashboard", "--port", str(self.port),
             "--nats-url", nats_url, *args],
            cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        # Each browser session's app is a child: stop the whole group.
        with_group = [signal.SIGTERM, signal.SIGKILL]
        for sig in with_group:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=10)
                return
            except (subprocess.TimeoutExpired, ProcessLookupError):
                continue

    def children(self) -> list[int]:
        """Pids of the dashboard's child processes (one TUI per open tab)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                found.append(int(entry.name))
        return found


@pytest.fixture
def dashboard(nats_url: str) -> Iterator[Dashboard]:
    """A dashboard with a known token and room for one tab."""
    server = Dashboard(nats_url, "--token", TOKEN, "--max-sessions", "1")
    try:
        yield server
    finally:
        server.stop()


async def get(base: str, path: str, **options: object) -> tuple[int, str, aiohttp.ClientResponse]:
    """GET ``path`` (retrying while the server starts); (status, body, response)."""
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        while True:
            try:
                async with session.get(base + path, allow_redirects=False, **options) as r:
                    return r.status, await r.text(), r
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def read_screen(ws: aiohttp.ClientWebSocketResponse, *wanted: str) -> str:
    """What the tab's TUI drew, until every ``wanted`` text is in it (or 30 s pass)."""
    screen = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(w in screen for w in wanted):
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
    return screen


async def test_without_the_token_nothing_but_a_page_saying_how_to_get_in(
    dashboard: Dashboard,
) -> None:
    status, body, _ = await get(dashboard.base, "/")
    assert status == 401 and "needs its token" in body and "?token=" in body
    status, _, _ = await get(dashboard.base, "/?token=wrong")
    assert status == 401
    status, _, _ = await get(dashboard.base, "/", cookies={COOKIE: "wrong"})
    assert status == 401
    status, _, _ = await get(dashboard.base, "/ws?width=80&height=24")
    assert status == 401
    assert dashboard.children() == []  # nothing started for them


async def test_the_token_from_the_url_becomes_a_cookie_and_serves_the_live_tui(
    dashboard: Dashboard,
) -> None:
    await naq.enqueue(jobs.add, 1, 2, queue_name="dash")
    status, _, response = await get(dashboard.base, f"/?token={TOKEN}&fontsize=14")
    assert status == 302
    assert response.headers["Location"] == "/?fontsize=14"  # the token leaves the address bar
    cookie = response.cookies[COOKIE]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    status, page, _ = await get(dashboard.base, "/", cookies={COOKIE: TOKEN})
    assert status == 200 and "/ws" in page
    async with aiohttp.ClientSession(cookies={COOKIE: TOKEN}) as session:
        async with session.ws_connect(dashboard.base + "/ws?width=120&height=36") as ws:
            screen = await read_screen(ws, "Queues", "connected", "dash")
    assert "Queues" in screen, screen[-2000:]
    assert "connected" in screen
    assert "dash" in screen  # the queue we enqueued on, shown live


async def test_sessions_are_bounded_and_a_closed_tab_ends_its_process(
    dashboard: Dashboard,
) -> None:
    await get(dashboard.base, "/")  # up
    async with aiohttp.ClientSession(cookies={COOKIE: TOKEN}) as session:
        async with session.ws_connect(dashboard.base + "/ws?width=80&height=24") as ws:
            await read_screen(ws, "Queues")
            (tui,) = dashboard.children()
            status, page, _ = await get(dashboard.base, "/", cookies={COOKIE: TOKEN})
            assert status == 503 and "at most 1 sessions" in page
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(dashboard.base + "/ws?width=80&height=24")
            assert refused.value.status == 503
            assert dashboard.children() == [tui]  # no second process
    await wait_until(lambda: not dashboard.children(), timeout=15)
    assert not Path(f"/proc/{tui}").exists()


async def test_a_websocket_from_another_site_is_refused(dashboard: Dashboard) -> None:
    await get(dashboard.base, "/")
    async with aiohttp.ClientSession(cookies={COOKIE: TOKEN}) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                dashboard.base + "/ws", headers={"Origin": "http://evil.example"}
            )
    assert refused.value.status == 403


async def test_no_auth_on_loopback_serves_and_a_made_up_token_is_printed(nats_url: str) -> None:
    open_one = Dashboard(nats_url, "--no-auth", "--readonly")
    made_up = Dashboard(nats_url)
    try:
        status, page, _ = await get(open_one.base, "/")
        assert status == 200 and "read-only" in page
        status, _, _ = await get(made_up.base, "/")
        assert status == 401
    finally:
        open_one.stop()
        made_up.stop()
    printed = made_up.process.stdout.read().decode()  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{made_up.port}/?token=" in printed
    token = printed.split("?token=", 1)[1].split()[0]
    assert len(token) >= 24


def test_no_auth_off_loopback_is_refused_before_anything_listens(nats_url: str) -> None:
    port = free_port()
    out = subprocess.run(
        [sys.executable, "-m", "naq", "dashboard", "--host", "0.0.0.0", "--port", str(port),
         "--no-auth", "--nats-url", nats_url],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--no-auth is refused on --host 0.0.0.0" in lines[0]
    assert "naq dashboard" not in out.stdout  # it never said it was serving
