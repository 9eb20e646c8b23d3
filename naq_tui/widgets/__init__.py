"""Widgets of the naq TUI, one per file."""
