"""Open ``naq dashboard`` in headless Chromium and save a screenshot of what a user sees.

Starts an embedded nats-server with a few jobs, the dashboard on a free port,
then Debian's ``chromium`` (``apt-get install chromium``) headless on the page;
the PNG lands in ``screenshots/dashboard-chromium.png``. Exits non-zero if the
page doesn't load or Chromium is missing.

Run: ``.venv/bin/python scripts/check_dashboard.py``
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import naq  # noqa: E402
from naq.server import EmbeddedServer, free_port  # noqa: E402
from tests import jobs  # noqa: E402

OUTPUT = REPO / "screenshots" / "dashboard-chromium.png"


async def seed(url: str) -> None:
    """A few jobs so the panes have something to show."""
    queue = naq.Queue("emails", nats_url=url)
    for i in range(5):
        await queue.enqueue(jobs.add, i, i)
    await queue.schedule(jobs.noop, cron="*/5 * * * *")


def wait_for(url: str, seconds: float) -> None:
    # With cookies, as a browser: the token in the URL comes back as a cookie on a redirect.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    deadline = time.monotonic() + seconds
    while True:
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def screenshot(browser: str, page: str, settle: float = 8.0) -> bytes:
    """Load ``page`` in headless Chromium, wait in real time for the app to draw
    over its websocket, and return a PNG (driven through the DevTools protocol)."""
    debug_port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        chromium = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,800",
                f"--remote-debugging-port={debug_port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with aiohttp.ClientSession() as session:
                targets: list[dict[str, str]] = []
                deadline = time.monotonic() + 20
                while not targets:
                    try:
                        async with session.get(f"http://127.0.0.1:{debug_port}/json") as r:
                            targets = [t for t in await r.json() if t.get("type") == "page"]
                    except aiohttp.ClientConnectionError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                async with session.ws_connect(targets[0]["webSocketDebuggerUrl"]) as ws:
                    counter = 0

                    async def call(method: str, **params: object) -> dict[str, object]:
                        nonlocal counter
                        counter += 1
                        await ws.send_json({"id": counter, "method": method, "params": params})
                        while True:
                            reply = await ws.receive_json(timeout=30)
                            if reply.get("id") == counter:
                                return dict(reply.get("result", {}))

                    await call("Page.enable")
                    await call("Page.navigate", url=page)
                    await asyncio.sleep(settle)
                    shot = await call("Page.captureScreenshot", format="png")
                    return base64.b64decode(str(shot["data"]))
        finally:
            chromium.terminate()
            chromium.wait(timeout=10)


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    with EmbeddedServer() as server:
        asyncio.run(seed(server.url))
        port = free_port()
        token = secrets.token_urlsafe(16)
        dashboard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "naq",
                "dashboard",
                "--port",
                str(port),
                "-u",
                server.url,
                "--token",
                token,
            ],  # fmt: skip
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # As a user opens it: the token in the URL once, a cookie from then on.
            page = f"http://127.0.0.1:{port}/?token={token}"
            wait_for(page, 20)
            OUTPUT.parent.mkdir(exist_ok=True)
            OUTPUT.write_bytes(asyncio.run(screenshot(browser, page)))
        finally:
            os.killpg(dashboard.pid, signal.SIGTERM)
            dashboard.wait(timeout=10)
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
