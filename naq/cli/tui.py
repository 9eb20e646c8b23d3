"""The TUI: ``naq tui`` in the terminal, ``naq dashboard`` in a web browser."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import LogLevel, NatsUrl
from naq.cli.output import console
from naq.cli.runner import guarded, settings_for, setup_logging, setup_tui_logging


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
    log_level: LogLevel = None,
) -> None:
    """Serve the TUI in a web browser (textual-serve)."""
    import shlex

    from textual_serve.server import Server

    setup_logging(log_level, "INFO")
    command = [sys.executable, "-m", "naq", "tui"]
    url = settings_for(nats_url).nats_url
    command += ["--nats-url", url]
    if readonly:
        command.append("--readonly")
    console.print(f"naq dashboard on http://{host}:{port} (NATS at {url}); Ctrl-C stops it")
    Server(shlex.join(command), host=host, port=port, title="naq").serve()
