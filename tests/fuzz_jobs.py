"""Job functions for the fuzz and fencing tests (importable by worker processes as
``tests.fuzz_jobs``).

The fuzz tests point generated job envelopes at this module only, and their worker runs with
``allowed_modules=["tests.fuzz_jobs"]``: whatever function name a generated message carries, the
worker can never import or call anything else.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: An attribute that exists but is not callable (a job naming it must be refused, not run).
NOT_CALLABLE = 42


def accept(*args: object, **kwargs: object) -> None:
    """Take any arguments and return None: a fuzzed envelope that names it runs cleanly."""


def reject(*args: object, **kwargs: object) -> None:
    """Raise whatever the arguments: a fuzzed envelope that names it fails on every attempt."""
    raise RuntimeError("rejected by tests.fuzz_jobs.reject")


def always_fail(log_file: str) -> None:
    """Append ``<pid> <time>`` to ``log_file`` (one line per run), then raise: a poison job."""
    with open(log_file, "a") as handle:
        handle.write(f"{os.getpid()} {time.time()}\n")
    raise RuntimeError("poison job fails on every attempt")


def crash_worker(log_file: str) -> None:
    """Append ``<pid> <time>`` to ``log_file``, then end the worker process at once (no cleanup,
    no ack): a job that takes its worker down with it on every delivery."""
    with open(log_file, "a") as handle:
        handle.write(f"{os.getpid()} {time.time()}\n")
        handle.flush()
    os._exit(3)


def start_sleep_end(log_file: str, tag: str, seconds: float) -> str:
    """Append ``start <pid>``, sleep ``seconds`` in the worker's thread, append ``end <pid>``.

    The two lines tell which process ran the job and when each run got to its end, so a test can
    see a frozen worker finish its run after being thawed.
    """
    path = Path(log_file)
    with path.open("a") as handle:
        handle.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    with path.open("a") as handle:
        handle.write(f"end {os.getpid()}\n")
    return tag
