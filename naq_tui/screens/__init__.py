"""Screens (modals) of the naq TUI, one per file."""
