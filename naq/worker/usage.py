"""What the worker's process uses, for its heartbeats: CPU % and resident memory.

CPU comes from ``os.times()`` (the process's own user and system time, children left
out) against ``time.monotonic()``: the share of one core used since the previous
sample, so a process running threads on several cores may pass 100 %. Memory comes
from ``/proc/self/statm`` where there is one (Linux: the current resident set, one small
read), else from psutil when it is installed, else from ``resource``'s peak resident
set (what the process used at most, not now), else it is unknown (None).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

STATM = "/proc/self/statm"


class ProcessUsage:
    """Samples of this process's CPU % (since the previous sample) and resident memory."""

    def __init__(self) -> None:
        self._cpu, self._at = _cpu_seconds(), time.monotonic()
        self._rss = _rss_reader()

    def cpu_percent(self) -> float:
        """CPU time used since the previous call (or since this object was made), in %
        of one core."""
        cpu, at = _cpu_seconds(), time.monotonic()
        elapsed = at - self._at
        used = cpu - self._cpu
        self._cpu, self._at = cpu, at
        if elapsed <= 0:
            return 0.0
        return round(max(0.0, used / elapsed * 100.0), 1)

    def rss_bytes(self) -> int | None:
        """Resident memory of the process in bytes (see the module's note); None when unknown."""
        try:
            return self._rss()
        except (OSError, ValueError):
            return None


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rss_reader() -> Callable[[], int | None]:
    """The cheapest way this platform tells the resident memory."""
    if os.path.exists(STATM):
        page = os.sysconf("SC_PAGE_SIZE")

        def from_statm() -> int:
            with open(STATM, "rb") as statm:
                return int(statm.read().split()[1]) * page

        return from_statm
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        process = psutil.Process()
        return lambda: int(process.memory_info().rss)
    try:
        import resource
    except ImportError:  # Windows without psutil
        return lambda: None
    # The peak, not the current size: ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return lambda: int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
