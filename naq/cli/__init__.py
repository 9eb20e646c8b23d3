"""The ``naq`` command line: thin shells over the library, tables that fit the terminal,
``--json`` for scripts, and one clear line (never a traceback) when something is wrong.

One module per noun registers its commands on the app (:mod:`naq.cli.app`): jobs, workers,
schedules, queues, failed (dead letters), metrics, server (and demo), tui (and dashboard),
exporter.
"""

from __future__ import annotations

# Imported for the commands they register on the app.
from naq.cli import (  # noqa: F401
    exporter,
    failed,
    jobs,
    metrics,
    queues,
    schedules,
    server,
    tui,
    workers,
)
from naq.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``naq`` console script (and of ``python -m naq``)."""
    # The name completion scripts and help are written for, however naq was started.
    app(prog_name="naq")
