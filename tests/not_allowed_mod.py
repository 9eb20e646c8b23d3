"""A module workers in tests must refuse to import (see test_worker.py).

Importing it leaves a trace in ``sys.modules`` — the test checks it never appears there.
"""

from __future__ import annotations

from pathlib import Path


def touch(path: str) -> str:
    """Create the file ``path``."""
    Path(path).write_text("ran\n")
    return path
