"""``python -m naq`` runs the CLI."""

from naq.cli import main

main()
