"""The TUI: ``naq tui`` in the terminal, ``naq dashboard`` in a web browser."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import LogLevel, NatsUrl
from naq.cli.output import console
from naq.cli.runner import fail, guarded, settings_for, setup_logging, setup_tui_logging


@app.command()
@guarded
def tui(
    nats_url: NatsUrl = None,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Show only: hide and refuse every action.")
    ] = False,
) -> None:
    """Open the terminal UI: live queues, workers, schedules, jobs and dead letters."""
    from naq_tui.app import NaqApp
    from naq_tui.live import LiveService

    setup_tui_logging()
    NaqApp(LiveService(settings_for(nats_url)), readonly=readonly).run()


@app.command()
@guarded
def dashboard(
    host: Annotated[str, typer.Option("--host", "-h", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on.")] = 8080,
    nats_url: NatsUrl = None,
    readonly: Annotated[bool, typer.Option("--readonly", help="Hide and refuse actions.")] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="NAQ_DASHBOARD_TOKEN",
            show_envvar=False,
            help="The token a browser needs \\[env NAQ_DASHBOARD_TOKEN]; without it, a random "
            "one is made and shown in the URL printed.",
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="No token (refused on any address but loopback)."),
    ] = False,
    max_sessions: Annotated[
        int, typer.Option(help="Browser tabs served at once (each runs one TUI process).")
    ] = 8,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="The address browsers reach it at, behind a reverse proxy "
            "(e.g. https://ops.example.com/naq)."
        ),
    ] = None,
    log_level: LogLevel = None,
) -> None:
    """Serve the TUI in a web browser, to holders of its token (textual-serve)."""
    import shlex

    from naq_tui.dashboard import DashboardServer, is_loopback, new_token

    setup_logging(log_level, "INFO")
    if no_auth and not is_loopback(host):
        raise fail(
            f"--no-auth is refused on --host {host}: anyone who reaches it could pause, purge "
            "and cancel; use a token (the default), or serve on 127.0.0.1"
        )
    if max_sessions < 1:
        raise fail(f"--max-sessions {max_sessions} must be at least 1")
    if token is not None and not token.strip():
        raise fail("--token (or NAQ_DASHBOARD_TOKEN) is empty")
    url = settings_for(nats_url).nats_url
    command = [sys.executable, "-m", "naq", "tui", "--nats-url", url]
    if readonly:
        command.append("--readonly")
    server = DashboardServer(
        # exec: the tab's process is the TUI itself, so ending it ends the TUI.
        "exec " + shlex.join(command),
        host=host,
        port=port,
        token=None if no_auth else (token or new_token()),
        max_sessions=max_sessions,
        readonly=readonly,
        public_url=public_url,
    )
    mode = " read-only" if readonly else ""
    console.print(
        f"naq dashboard{mode} on {server.url()} (NATS at {url}); Ctrl-C stops it",
        soft_wrap=True,
        highlight=False,
    )
    server.serve()
