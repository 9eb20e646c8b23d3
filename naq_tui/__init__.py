"""Terminal UI for naq (Textual)."""
