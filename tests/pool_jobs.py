"""Job functions of the process pool's tests (importable by worker processes as
``tests.pool_jobs``)."""

from __future__ import annotations

import os
import time


def _append(log_file: str, line: str) -> None:
    # One write to a file opened for appending: lines from several processes never mix.
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def mark_run(log_file: str, tag: str, seconds: float) -> str:
    """Append ``start TAG PID`` to ``log_file``, sleep ``seconds``, append ``end TAG PID``;
    return the tag."""
    _append(log_file, f"start {tag} {os.getpid()}\n")
    time.sleep(seconds)
    _append(log_file, f"end {tag} {os.getpid()}\n")
    return tag
