"""Metrics: ``naq metrics``, what each (queue, function) ran over a recent window."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.cli.app import app
from naq.cli.options import JsonFlag, NatsUrl, QueueFilter
from naq.cli.output import console, to_json
from naq.cli.runner import fail, guarded, run, settings_for
from naq.cli.tables import Column, print_listing

METRICS_COLUMNS = (
    Column("queue", "id"),
    Column("function", "text", 80, cut="left"),
    Column("processed", "fixed", 70, "right"),
    Column("failed", "fixed", 60, "right", style=lambda n: "red" if n != "0" else ""),
    Column("retried", "fixed", 30, "right"),
    Column("p50", "fixed", 50, "right"),
    Column("p95", "fixed", 55, "right"),
    Column("max", "fixed", 35, "right"),
    Column("wait p50", "fixed", 20, "right"),
    Column("wait p95", "fixed", 40, "right"),
)


def fmt_seconds(seconds: float) -> str:
    """A duration in a few characters: ``840us``, ``12ms``, ``1.25s``, ``4.0m``."""
    if seconds <= 0:
        return "0"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}m"


@app.command("metrics")
@guarded
def metrics_command(
    queue: QueueFilter = None,
    window: Annotated[
        str, typer.Option("--window", "-w", help="Seconds to look back over.")
    ] = "300",
    nats_url: NatsUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Jobs processed, failed and retried per queue and function, with execution-time and
    time-in-queue percentiles, over the last WINDOW seconds (from the workers' reports)."""
    from naq.metrics import function_metrics

    try:
        seconds = float(window)
    except ValueError:
        raise fail(f"--window {window!r} is not a number of seconds") from None
    rows = run(function_metrics(queue, seconds, settings=settings_for(nats_url)))
    if json_output:
        print(to_json([row.to_dict() for row in rows]))
        return
    if not rows:
        console.print(f"No jobs ended in the last {seconds:g}s.")
        return
    cells = [
        [
            row.queue,
            row.function,
            str(row.processed),
            str(row.failed),
            str(row.retried),
            fmt_seconds(row.duration_p50),
            fmt_seconds(row.duration_p95),
            fmt_seconds(row.duration_max),
            fmt_seconds(row.wait_p50),
            fmt_seconds(row.wait_p95),
        ]
        for row in rows
    ]
    print_listing(f"{len(rows)} function(s), last {seconds:g}s", METRICS_COLUMNS, cells)
