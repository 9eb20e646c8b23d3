"""A task registered by name, imported only by the worker of the test that uses it."""

from __future__ import annotations

from pathlib import Path

import naq


@naq.task(name="tests.flaky_by_name", max_retries=2, retry_delay=0, timeout=30)
def flaky_by_name(counter_file: str) -> int:
    """Fail twice, then return the attempt number."""
    path = Path(counter_file)
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    if count <= 2:
        raise RuntimeError(f"failure {count}")
    return count
