"""The ``naq`` Typer app: its root options (``--version``, shell completion) and the
``version`` command. Each noun's commands live in a module of their own and register here."""

from __future__ import annotations

from typing import Annotated

import typer

from naq.cli.runner import setup_logging

app = typer.Typer(
    name="naq",
    help="naq: a job queue on NATS JetStream.",
    no_args_is_help=True,
    # Typer's own --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
)


def print_version() -> None:
    """Print naq's version."""
    from naq import __version__

    print(f"naq {__version__}")


def _version_flag(value: bool) -> None:
    if value:
        print_version()
        raise typer.Exit()


@app.callback()
def _every_command(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            "-V",
            callback=_version_flag,
            is_eager=True,
            help="Print naq's version and exit.",
        ),
    ] = None,
) -> None:
    # Every command logs at NAQ_LOG_LEVEL, those without a --log-level flag included;
    # a command with one sets its level again.
    setup_logging(None, "WARNING")


@app.command("version")
def version_command() -> None:
    """Print naq's version."""
    print_version()
