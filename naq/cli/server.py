"""Local runs: ``naq server`` (the bundled nats-server) and ``naq demo``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from naq.cli.app import app
from naq.cli.output import console
from naq.cli.runner import fail, run, setup_tui_logging
from naq.errors import NaqException


@app.command()
def server(
    port: Annotated[int, typer.Option("--port", "-p", help="Client port.")] = 4222,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        str, typer.Option("--data-dir", "-d", help="JetStream store directory.")
    ] = ".naq-data",
) -> None:
    """Run the bundled nats-server (JetStream on) in the foreground; Ctrl-C stops it."""
    from naq.server import run_foreground

    try:
        code = run_foreground(host, port, data_dir)
    except NaqException as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (with --no-tui).")
    ] = None,
    no_tui: Annotated[
        bool, typer.Option("--no-tui", help="Print outcomes instead of opening the TUI.")
    ] = False,
) -> None:
    """Run an embedded nats-server, a worker, a scheduler and sample jobs, in the TUI."""
    from naq.demo import run_demo

    if no_tui:
        counts = run(run_demo(duration))
        console.print("demo stopped: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return
    setup_tui_logging()

    async def show(settings: Any) -> None:
        from naq_tui.app import NaqApp
        from naq_tui.live import LiveService

        await NaqApp(LiveService(settings)).run_async()

    run(run_demo(show=show))
