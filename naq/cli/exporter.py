"""``naq exporter``: Prometheus metrics of every queue, worker and function on ``/metrics``."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import LogLevel, NatsUrl
from naq.cli.output import console
from naq.cli.runner import fail, guarded, run, settings_for, setup_logging, until_signal


@app.command()
@guarded
def exporter(
    host: Annotated[str, typer.Option("--host", "-h", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on.")] = 9108,
    interval: Annotated[float, typer.Option(help="Seconds between reads of NATS.")] = 5.0,
    nats_url: NatsUrl = None,
    log_level: LogLevel = None,
) -> None:
    """Serve Prometheus metrics on /metrics: queues, dead letters, workers, and the jobs
    run per function (counters and duration and wait histograms)."""
    from naq.exporter import Exporter

    setup_logging(log_level, "INFO")
    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a port number (0 to 65535)")
    settings = settings_for(nats_url)
    metrics = Exporter(settings, interval=interval)

    async def serve() -> None:
        served = metrics.serve(host, port)
        console.print(
            f"naq exporter on http://{host}:{served}/metrics (NATS at {settings.nats_url}); "
            "Ctrl-C stops it"
        )
        try:
            await metrics.run()
        finally:
            await metrics.close()

    run(until_signal(serve()))
