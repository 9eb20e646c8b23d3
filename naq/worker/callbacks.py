"""Running a job's callbacks (:mod:`naq.callbacks`) in the worker that ended it."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from naq.broker import Broker
from naq.jobs import read_job_info
from naq.models import JobEnvelope, JobStatus
from naq.serialization import resolve_function
from naq.settings import Settings

log = logging.getLogger("naq.worker")


def callback_for(envelope: JobEnvelope, status: str) -> str | None:
    """The import path of the callback ``envelope`` names for an end in ``status``."""
    if status == JobStatus.COMPLETED:
        return envelope.on_success
    if status == JobStatus.FAILED:
        return envelope.on_failure
    if status == JobStatus.CANCELLED:
        return envelope.on_stopped
    return None


def _arity(func: Callable[..., Any]) -> int:
    """How many positional arguments (1 or 2) to call a callback with."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    return 1 if len(positional) == 1 and not varargs else 2


class Callbacks:
    """Resolves (once per path, with ``allowed_modules`` in force) and calls callbacks."""

    def __init__(self, broker: Broker, settings: Settings) -> None:
        self._broker = broker
        self._allowed = settings.allowed_modules
        self._resolved: dict[str, tuple[Callable[..., Any], int]] = {}

    async def run(self, envelope: JobEnvelope, status: str, value: Any) -> None:
        """Call the callback for the job's end in ``status`` (if it names one) with the
        job's stored info and ``value`` (its result, or the error); its failure is logged."""
        path = callback_for(envelope, status)
        if path is None:
            return
        try:
            func, arity = self._resolve(path)
            info = await read_job_info(self._broker, envelope.id)
            args = (info, value)[:arity]
            if inspect.iscoroutinefunction(func):
                await func(*args)
            else:
                # A thread, as sync jobs run: a slow callback must not hold up the loop.
                outcome = await asyncio.to_thread(func, *args)
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception:
            log.exception("callback %s of job %s (%s) failed", path, envelope.id, status)

    def _resolve(self, path: str) -> tuple[Callable[..., Any], int]:
        found = self._resolved.get(path)
        if found is None:
            func = resolve_function(path, None, self._allowed)
            found = self._resolved[path] = (func, _arity(func))
        return found
