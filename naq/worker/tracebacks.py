"""A failed job's traceback as naq stores it: the user's code, not the worker's.

The worker reaches a job's function through its own frames and asyncio's (the event
loop's tasks and futures, the thread pool a sync job runs in); the stored traceback leaves
those out and starts at the job's function. naq's own frames are left out wherever they
are (a job calling naq), with the asyncio and pool frames naq called. The exception chain
(cause and context) and the final ``ErrorType: message`` line are kept.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import traceback
from collections.abc import Iterator

from naq.worker.execution import JobTimeout


def _directory(module_file: str) -> str:
    return os.path.normcase(os.path.dirname(os.path.abspath(module_file))) + os.sep


#: naq's package directory, the parent of this module's (naq/worker/).
_NAQ = _directory(os.path.dirname(os.path.abspath(__file__)))
#: What runs a job's function on naq's behalf: asyncio's tasks and futures, the thread pool.
_RUNNERS = (
    _directory(asyncio.__file__),
    _directory(concurrent.futures.__file__),
    os.path.normcase(os.path.abspath(threading.__file__)),
)


def job_traceback(exc: BaseException) -> str:
    """The traceback stored for a job that raised ``exc``.

    A timeout is its error line alone: where the worker noticed it says nothing of the job.
    """
    if isinstance(exc, JobTimeout):
        return f"{type(exc).__name__}: {exc}\n"
    summary = traceback.TracebackException.from_exception(exc)
    for link in _chain(summary):
        link.stack = traceback.StackSummary.from_list(_user_frames(link.stack))
    return "".join(summary.format())


def _chain(summary: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """``summary`` and every exception it chains to (causes, contexts, a group's members)."""
    seen: set[int] = set()
    pending = [summary]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]
        pending += getattr(link, "exceptions", None) or []  # ExceptionGroup (3.11+)


def _user_frames(stack: traceback.StackSummary) -> list[traceback.FrameSummary]:
    kept = []
    in_naq = False
    for frame in stack:
        path = os.path.normcase(os.path.abspath(frame.filename))
        if path.startswith(_NAQ):
            in_naq = True
        elif in_naq and path.startswith(_RUNNERS):
            pass  # asyncio's or the pool's frames count as naq's when naq called them
        else:
            kept.append(frame)
            in_naq = False
    return kept
