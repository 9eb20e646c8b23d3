"""Traces with OpenTelemetry: the trace context from enqueue to the worker's span, scheduled
runs starting traces of their own, and nothing at all while OpenTelemetry is not set up.

The SDK's provider is set once for this module (OpenTelemetry allows one per process) and
taken away again after it, so the other modules run untraced as before.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
)

import naq
from naq import Queue, tracing
from naq.names import Names
from tests import jobs
from tests.helpers import StatusWatch, prefix, running_worker, wait_until
from tests.test_scheduling import running_scheduler

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "traced"
ROOT = Path(__file__).resolve().parent.parent
#: A remote caller's span (as an incoming request would carry it), with a tracestate entry.
CALLER = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "x1")]),
)


def _untraced() -> None:
    """Back to a process where no tracer provider was ever set (as OpenTelemetry's own
    test utilities do it: the API offers no way to unset the provider)."""
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    tracing.tracer = None


@pytest.fixture(scope="module")
def provider() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(SimpleSpanProcessor(exporter))
    _untraced()
    trace.set_tracer_provider(sdk)
    try:
        yield exporter
    finally:
        sdk.shutdown()
        _untraced()


@pytest.fixture
def spans(provider: InMemorySpanExporter) -> InMemorySpanExporter:
    """The module's exporter, emptied for this test."""
    provider.clear()
    return provider


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def ended_spans(exporter: InMemorySpanExporter, name: str, count: int) -> list[ReadableSpan]:
    """The ``count`` spans called ``name``, once ended (a job's result is stored just before
    its span ends), in the order they ended."""
    # Nothing to await for a span's end: the exporter is a plain list.
    await wait_until(lambda: len(named(exporter, name)) >= count, timeout=10)
    found = named(exporter, name)
    assert len(found) == count, [span.attributes for span in found]
    return found


async def last_message_headers() -> dict[str, str]:
    """The headers of the last job message on the queue (read before any worker takes it)."""
    names = Names(prefix())
    nc = await nats.connect(naq.get_settings().nats_url)
    try:
        msg = await nc.jetstream().get_last_msg(names.jobs_stream, names.queue_subject(Q))
        return dict(msg.headers or {})
    finally:
        await nc.close()


async def test_the_job_span_is_a_child_of_the_enqueuing_span(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    async with Queue(Q) as queue:
        with trace.use_span(NonRecordingSpan(CALLER)):
            with tracer.start_as_current_span("request") as request:
                job = await queue.enqueue(jobs.add, 1, 2)
        headers = await last_message_headers()
        request_context = request.get_span_context()
        assert headers["traceparent"] == (
            f"00-{request_context.trace_id:032x}-{request_context.span_id:016x}-01"
        )
        assert headers["tracestate"] == "vendor=x1"
        async with running_worker(Q):
            assert await job.result(timeout=10) == 3
            (span,) = await ended_spans(spans, f"naq.job {job.function_ref}", 1)
    assert span.kind == SpanKind.CONSUMER
    assert span.context.trace_id == CALLER.trace_id
    assert span.parent is not None and span.parent.span_id == request_context.span_id
    assert span.context.trace_state == CALLER.trace_state
    assert dict(span.attributes or {}) == {
        "naq.job_id": job.job_id,
        "naq.queue": Q,
        "naq.attempt": 1,
        "naq.outcome": "completed",
    }
    assert span.status.status_code == StatusCode.UNSET


async def test_a_sync_enqueue_carries_the_callers_span(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")

    def handle_a_request() -> tuple[naq.Job, SpanContext]:
        # As a web framework's sync handler would: the span is current in this thread only,
        # and the enqueue runs on naq's background loop.
        with tracer.start_as_current_span("request") as request:
            return naq.enqueue_sync(jobs.add, 1, 1, queue_name=Q), request.get_span_context()

    job, request = await asyncio.to_thread(handle_a_request)
    async with running_worker(Q):
        assert await job.result(timeout=10) == 2
        (span,) = await ended_spans(spans, f"naq.job {job.function_ref}", 1)
    assert span.parent is not None and span.parent.span_id == request.span_id


async def test_each_attempt_has_a_span_with_its_outcome_and_error(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("test")
    async with Queue(Q) as queue, running_worker(Q):
        with tracer.start_as_current_span("request") as request:
            job = await queue.enqueue(
                jobs.flaky, str(tmp_path / "count"), 5, max_retries=1, retry_delay=0.05
            )
        with pytest.raises(naq.JobExecutionError):
            await job.result(timeout=10)
        attempts = await ended_spans(spans, f"naq.job {job.function_ref}", 2)
    assert [s.attributes["naq.attempt"] for s in attempts] == [1, 2]  # type: ignore[index]
    assert [s.attributes["naq.outcome"] for s in attempts] == ["retry", "failed"]  # type: ignore[index]
    for attempt, span in enumerate(attempts, start=1):
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == f"RuntimeError: flaky failure {attempt}"
        (event,) = span.events
        assert event.name == "exception"
        assert (event.attributes or {})["exception.type"] == "RuntimeError"


async def test_enqueue_without_an_active_span_starts_a_trace_in_the_worker(
    spans: InMemorySpanExporter,
) -> None:
    async with Queue(Q) as queue:
        job = await queue.enqueue(jobs.add, 2, 2)
        assert "traceparent" not in await last_message_headers()
        async with running_worker(Q):
            assert await job.result(timeout=10) == 4
            (span,) = await ended_spans(spans, f"naq.job {job.function_ref}", 1)
    assert span.parent is None
    assert span.attributes and span.attributes["naq.outcome"] == "completed"


async def test_a_parked_dependent_keeps_the_trace_it_was_enqueued_in(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    tracer = trace.get_tracer("test")
    release = tmp_path / "release"
    async with Queue(Q) as queue, running_worker(Q, concurrency=2):
        with tracer.start_as_current_span("request") as request:
            first = await queue.enqueue(jobs.sync_progress, str(release))
            # Parked until ``first`` completes: released with the headers it was parked with.
            second = await queue.enqueue(jobs.add, 3, 4, depends_on=first)
        release.write_text("go")
        assert await second.result(timeout=10) == 7
        await ended_spans(spans, f"naq.job {second.function_ref}", 1)
    by_job = {
        (span.attributes or {})["naq.job_id"]: span
        for span in spans.get_finished_spans()
        if span.name.startswith("naq.job ")
    }
    request_id = request.get_span_context().span_id
    for job in (first, second):
        parent = by_job[job.job_id].parent
        assert parent is not None and parent.span_id == request_id


async def test_a_cancelled_running_job_has_the_outcome_cancelled(
    spans: InMemorySpanExporter, nats_url: str
) -> None:
    async with (
        Queue(Q) as queue,
        running_worker(Q, concurrency=1),
        StatusWatch(nats_url, Q) as watch,
    ):
        job = await queue.enqueue(jobs.async_sleep, 30)
        await watch.status(job.job_id, naq.JobStatus.RUNNING)
        assert await naq.cancel_job(job.job_id) is True
        (span,) = await ended_spans(spans, f"naq.job {job.function_ref}", 1)
    assert span.attributes and span.attributes["naq.outcome"] == "cancelled"
    assert span.status.status_code == StatusCode.UNSET


async def test_a_scheduled_run_starts_a_trace_of_its_own(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    async with Queue(Q) as queue:
        with tracer.start_as_current_span("create the schedule") as creator:
            scheduled = await queue.enqueue_at(time.time(), jobs.add, 5, 6)
        async with running_scheduler(), running_worker(Q):
            assert await scheduled.result(timeout=10) == 11
            (run,) = await ended_spans(spans, f"naq.job {scheduled.function_ref}", 1)
            (schedule,) = await ended_spans(spans, f"naq.schedule {scheduled.function_ref}", 1)
    assert schedule.parent is None
    assert schedule.kind == SpanKind.PRODUCER
    assert schedule.context.trace_id != creator.get_span_context().trace_id
    assert schedule.attributes and schedule.attributes["naq.schedule_id"] == scheduled.job_id
    assert run.context.trace_id == schedule.context.trace_id
    assert run.parent is not None and run.parent.span_id == schedule.context.span_id


def test_import_naq_does_not_import_opentelemetry() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        import naq, naq.tracing
        print(json.dumps(sorted(n for n in sys.modules if n.startswith("opentelemetry"))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


async def test_without_a_tracer_provider_nothing_is_injected() -> None:
    # Its own process: this module's provider can't be unset for one test. OpenTelemetry is
    # imported there and a valid span is current, but no provider is set.
    code = textwrap.dedent(
        f"""
        import asyncio
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
        import naq
        from naq import tracing

        async def main():
            span = NonRecordingSpan(
                SpanContext({CALLER.trace_id}, {CALLER.span_id}, True, TraceFlags(1))
            )
            with trace.use_span(span):
                async with naq.Queue({Q!r}) as queue:
                    await queue.enqueue("tests.jobs.add", 1, 2)
            await naq.disconnect()
            print("tracer:", tracing.tracer)

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    headers = await last_message_headers()
    assert "traceparent" not in headers and "tracestate" not in headers
    assert stdout.decode().strip().splitlines()[-1] == "tracer: None"
