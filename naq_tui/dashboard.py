"""``naq dashboard``: the TUI served to web browsers, to those who hold its token only.

Built on textual-serve: each browser tab's websocket runs one ``naq tui`` process. On top
of it:

- **A token.** Every request but the page's static files needs the dashboard's token,
  compared in constant time. It is accepted once from the URL (``/?token=…``): the answer
  is a redirect to the same page without it, setting an HttpOnly, SameSite=Strict cookie
  that carries it from then on (the websocket included). A request without it gets 401 and
  a short page saying how to get in. ``token=None`` (``--no-auth``) turns this off.
- **Bounded sessions.** At most ``max_sessions`` tabs run a TUI at once; beyond that, a page
  (or, for the websocket, 503) saying so, and no new process. A closed tab's process is
  ended (asked to quit, then killed if it lingers).
- **Same-origin websockets.** A websocket opened from another site's page is refused,
  whatever cookie it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import ipaddress
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("naq.dashboard")

#: The cookie the token is kept in once accepted from the URL.
COOKIE = "naq_dashboard_token"
#: Seconds a closed tab's TUI gets to quit before it is killed.
QUIT_GRACE = 5.0

#: Shown on the page of a read-only dashboard, over the terminal's top right corner.
READONLY_BADGE = (
    "<div class='naq-readonly' style='position: fixed; top: 4px; right: 8px; z-index: 10; "
    "padding: 2px 8px; border-radius: 4px; background: #b58900; color: #000; "
    "font: 12px system-ui, sans-serif'>read-only</div>"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    """A random token for a dashboard started without one."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _closed(websocket: web.WebSocketResponse) -> None:
    await websocket.close()


def _page(title: str, body: str, status: int) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


class DashboardServer(Server):
    """textual-serve's server with a token, a session limit and same-origin websockets."""

    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        token: str | None,
        max_sessions: int,
        readonly: bool = False,
        public_url: str | None = None,
    ) -> None:
        title = "naq (read-only)" if readonly else "naq"
        super().__init__(command, host=host, port=port, title=title, public_url=public_url)
        self.token = token
        self.max_sessions = max_sessions
        self.readonly = readonly
        #: The TUIs of the open tabs.
        self.sessions: set[AppService] = set()

    def url(self) -> str:
        """The address to open: with the token in it, when there is one."""
        base = self.public_url.rstrip("/") + "/"
        return f"{base}?{urlencode({'token': self.token})}" if self.token else base

    def initialize_logging(self) -> None:
        """naq's CLI has set logging up already: keep it (textual-serve would replace it)."""

    async def on_startup(self, app: web.Application) -> None:
        """Say nothing: the CLI prints the URL to open (textual-serve prints its banner)."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    # -- the token ------------------------------------------------------------------------

    def _holds_token(self, request: web.Request, given: str | None) -> bool:
        wanted = self.token
        if wanted is None:
            return True
        presented = given if given is not None else request.cookies.get(COOKIE, "")
        return hmac.compare_digest(presented.encode(), wanted.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)  # textual-serve's own scripts and styles
        given = request.query.get("token")
        if not self._holds_token(request, given):
            return _page(
                "This naq dashboard needs its token",
                "Open the address <code>naq dashboard</code> printed when it started "
                "(it ends in <code>?token=…</code>), or start it with <code>--token</code> "
                "or <code>NAQ_DASHBOARD_TOKEN</code> and add <code>?token=YOUR-TOKEN</code> "
                "to this address.",
                401,
            )
        if given is not None:
            # Taken from the URL once: kept in a cookie, and out of the address bar.
            query = {k: v for k, v in request.query.items() if k != "token"}
            location = request.path + (f"?{urlencode(query)}" if query else "")
            response = web.Response(status=302, headers={"Location": location})
            response.set_cookie(
                COOKIE,
                given,
                httponly=True,
                samesite="Strict",
                secure=request.secure or self.public_url.startswith("https"),
            )
            return response
        if request.path == "/ws" and not self._same_origin(request):
            return _page("Refused", "This dashboard's websocket is for its own page.", 403)
        if request.path in ("/", "/ws") and len(self.sessions) >= self.max_sessions:
            return _page(
                "Every dashboard session is in use",
                f"This dashboard runs at most {self.max_sessions} sessions at once (one per "
                "open tab). Close another tab of it, or start it with a higher "
                "<code>--max-sessions</code>.",
                503,
            )
        return await handler(request)

    def _same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: nothing to forge
        ours = {request.host, urlsplit(self.public_url).netloc}
        return urlsplit(origin).netloc in ours

    # -- sessions -------------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> Any:
        """The page, titled, with a badge when the dashboard is read-only."""
        response = await super().handle_index(request)
        if isinstance(response, web.Response) and response.text:
            page = response.text.replace(
                "</head>", f"<title>{html.escape(self.title)}</title></head>", 1
            )
            if self.readonly:
                page = re.sub(r"(<body[^>]*>)", r"\1" + READONLY_BADGE, page, count=1)
            response.text = page
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Run one tab's TUI for as long as its websocket is open, and end it after."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        service = AppService(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=lambda: _closed(websocket),
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions.add(service)
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("dashboard session failed")
        finally:
            self.sessions.discard(service)
            await self._end(service)
        return websocket

    @staticmethod
    async def _end(service: AppService) -> None:
        """Ask the tab's TUI to quit; kill it if it is still there after ``QUIT_GRACE``."""
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(service.stop(), QUIT_GRACE)
        # textual-serve keeps the process to itself; without it there is nothing to kill.
        process = getattr(service, "_process", None)
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(Exception):
                await process.wait()
