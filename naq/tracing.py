"""Traces with OpenTelemetry (``pip install naq[otel]``), as README.md's "Traces" tells:
every use of OpenTelemetry in naq is here, and the rest of naq calls the hooks below.

Nothing here imports OpenTelemetry before the application has (only code that imported
it can set a tracer provider). :data:`tracer` stays None until a provider is set, and the
per-job hooks read only that: it is looked at again by each enqueue call, each scheduled
run and each worker start, never per job, since asking OpenTelemetry costs a microsecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from naq.statuses import JobStatus

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from naq.models import JobEnvelope

#: The tracer naq's spans come from; None while tracing is off.
tracer: Tracer | None = None
#: The context last injected and the headers it gave: a batch enqueued under one span
#: reuses them instead of running the propagators for every message.
_last_injected: tuple[object, dict[str, str]] | None = None
#: What a span's context manager gives while tracing is off (a shared, reusable one).
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def configure() -> bool:
    """Whether tracing is on: OpenTelemetry is imported and a tracer provider set.

    Once on, it stays on (OpenTelemetry's provider can be set once per process).
    """
    global tracer
    if tracer is not None:
        return True
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        # Not imported by the application, so no provider was set: nothing to load.
        return False
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return False
    from naq import __version__

    tracer = provider.get_tracer("naq", __version__)
    return True


def inject(headers: dict[str, str]) -> None:
    """Add the active trace context to a job message's ``headers`` (tracing is on)."""
    global _last_injected
    from opentelemetry import context, propagate

    current = context.get_current()
    last = _last_injected
    if last is None or last[0] is not current:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=current)
        last = _last_injected = (current, carrier)
    headers.update(last[1])


def attempt_span(
    envelope: JobEnvelope, headers: dict[str, str] | None, attempt: int
) -> contextlib.AbstractContextManager[Span | None]:
    """The span one attempt at a job runs in (current while it runs), or a context
    manager giving None while tracing is off.

    Its parent is the trace context in the message's ``headers``; a message without
    one starts a trace. Give it the attempt's outcome with :func:`set_outcome`.
    """
    if tracer is None:
        return _NO_SPAN
    from opentelemetry import propagate
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind

    # Extracted into an empty context: the worker's own context is no parent of a job.
    parent = propagate.extract(headers or {}, context=Context())
    span = tracer.start_span(
        f"naq.job {envelope.fn}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "naq.job_id": envelope.id,
            "naq.queue": envelope.queue,
            "naq.attempt": attempt,
        },
    )
    return _current(span, parent)


def schedule_span(
    envelope: JobEnvelope, schedule_id: str
) -> contextlib.AbstractContextManager[Span | None]:
    """A ``naq.schedule <function>`` root span, current while the scheduler enqueues
    the run ``envelope`` of ``schedule_id`` (so the run's message carries it), or a
    context manager giving None while tracing is off."""
    if not configure():
        return _NO_SPAN
    assert tracer is not None
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind

    # A fresh context, not the current one: a run belongs to no caller's trace.
    root = Context()
    span = tracer.start_span(
        f"naq.schedule {envelope.fn}",
        context=root,
        kind=SpanKind.PRODUCER,
        attributes={
            "naq.job_id": envelope.id,
            "naq.queue": envelope.queue,
            "naq.schedule_id": schedule_id,
        },
    )
    return _current(span, root)


@contextlib.contextmanager
def _current(span: Span, parent: Any) -> Iterator[Span]:
    """Make ``span`` current (in ``parent``'s context) until the block ends, then end it.

    An exception leaving the block is recorded on it with status ERROR; a cancellation
    is its outcome, not an error.
    """
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    except asyncio.CancelledError:
        set_outcome(span, JobStatus.CANCELLED)
        raise
    except Exception as exc:
        _record_error(span, exc)
        raise
    finally:
        context.detach(token)
        span.end()


def set_outcome(span: Span | None, outcome: str, error: BaseException | None = None) -> None:
    """Record an attempt's ``outcome`` (completed, failed, retry, cancelled) on its span,
    and the exception it failed with, if any (status ERROR)."""
    if span is None:
        return
    span.set_attribute("naq.outcome", str(outcome))
    if error is not None:
        _record_error(span, error)


def _record_error(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
