"""Property-based tests of bad input on a queue subject (SPEC §7: malformed or forged messages are
moved to the failed stream with the reason, and the worker keeps going).

Two layers:

* the envelope decoder, without a server: ``naq.models.decode_envelope`` is what the worker
  turns message bytes into a :class:`~naq.models.JobEnvelope` with (it catches
  ``SerializationError`` and dead-letters the message), and :meth:`naq.Job.deserialize` is the
  public decoder that promises :class:`~naq.errors.SerializationError`. Both are fed arbitrary
  bytes, arbitrary JSON and valid envelopes with a field removed, retyped, given a strange value
  or nested very deeply;
* the worker against a real nats-server: batches of such messages, with generated headers, are
  published on a queue subject while a worker runs; every message JetStream stored must end as
  exactly one dead letter (with its bytes and a readable reason) or, for a message that is a
  well-formed job, with an outcome; the worker logs no unexpected error and still runs a job
  enqueued after the garbage.

Generated envelopes only ever name functions in ``tests.fuzz_jobs``, and the worker runs with
``allowed_modules=["tests.fuzz_jobs"]``, so a fuzzed message can't import or call anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from typing import Any

import msgspec
import nats
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import naq
from naq.errors import NaqException, SerializationError
from naq.models import (
    DeadLetter,
    JobEnvelope,
    JobStatus,
    dead_letter_decoder,
    decode_envelope,
    envelope_decoder,
)
from naq.names import validate_job_id, validate_queue_name
from naq.settings import MAX_TTL_SECONDS
from tests import fuzz_jobs
from tests.helpers import prefix, running_worker, wait_until

# -- strategies ----------------------------------------------------------------------------------

#: Any JSON value (no NaN/inf: JSON has no spelling for them).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

#: Strings that have broken, or could break, a NATS subject, a KV key or a module path.
TRICKY_STRINGS = [
    "",
    " ",
    "a b",
    "a.b",
    "a..b",
    ".",
    "*",
    ">",
    "a.>",
    "\r\nPUB x 1",
    "\x00",
    "é",
    "x" * 300,
    "x" * 5000,
    ":",
    "::",
    "tests.fuzz_jobs:",
    ":accept",
    "tests.fuzz_jobs:NOT_CALLABLE",
    "tests.fuzz_jobs:missing",
    "tests.fuzz_jobs:accept.__call__.__self__",
    "tests.fuzz_jobs:reject",
    "tests.fuzz_missing:accept",
    "os:system",
    "..",
    "pickle",
    "json",
    "zzz",
]

tricky_strings = st.sampled_from(TRICKY_STRINGS) | st.text(max_size=30)

tricky_numbers: st.SearchStrategy[Any] = (
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**63 - 1,
            2**63,
            2**64,
            -(2**70),
            0.0,
            -0.0,
            1e-300,
            -1e-9,
            1e308,
            -1e308,
        ]
    )
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)

valid_job_ids = st.from_regex(r"[A-Za-z0-9_=-]{1,40}", fullmatch=True)
valid_queue_names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)

#: What kind of value each envelope field holds, to pick a strange value of the same kind.
FIELD_KINDS: dict[str, str] = {
    "id": "str",
    "fn": "str",
    "queue": "str",
    "enqueued_at": "number",
    "args": "list",
    "kwargs": "dict",
    "module": "str",
    "max_retries": "number",
    "retry_delay": "number",
    "retry_strategy": "str",
    "retry_jitter": "number",
    "retry_on": "list",
    "ignore_on": "list",
    "timeout": "number",
    "result_ttl": "number",
    "depends_on": "list",
    "meta": "dict",
    "serializer": "str",
    "pickled": "str",
    "v": "number",
}
#: Fields a container can be nested into (``Any``-typed values: the decoder descends into them).
NESTABLE = ["args", "kwargs", "meta"]


@st.composite
def valid_envelopes(draw: st.DrawFn, queue: str | None = None) -> dict[str, Any]:
    """A well-formed envelope (as a dict) naming ``tests.fuzz_jobs:accept`` (always succeeds)."""
    envelope: dict[str, Any] = {
        "id": draw(valid_job_ids) + "-" + uuid.uuid4().hex[:8],
        "fn": "tests.fuzz_jobs:accept",
        "queue": queue if queue is not None else draw(valid_queue_names),
        "enqueued_at": draw(st.floats(min_value=0, max_value=4e9)),
    }
    if draw(st.booleans()):
        envelope["args"] = draw(st.lists(json_values, max_size=3))
    if draw(st.booleans()):
        envelope["kwargs"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    if draw(st.booleans()):
        envelope["meta"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    return envelope


def _nest(depth: int, leaf: Any) -> bytes:
    """JSON text of ``leaf`` wrapped in ``depth`` lists (built as text: Python's own encoder would
    hit its recursion limit first)."""
    return b"[" * depth + msgspec.json.encode(leaf) + b"]" * depth


@st.composite
def mutated_envelopes(draw: st.DrawFn, queue: str | None = None) -> bytes:
    """A valid envelope with one field removed, retyped, given a strange value of its own kind,
    its id or queue renamed strangely, or nested very deeply; returned as the message bytes."""
    envelope = draw(valid_envelopes(queue))
    field = draw(st.sampled_from(sorted(FIELD_KINDS)))
    operation = draw(st.sampled_from(["remove", "retype", "strange", "rename", "nest"]))
    if operation == "rename":
        # The two names that become subjects and keys, given what a producer should never send.
        envelope[draw(st.sampled_from(["id", "queue"]))] = draw(tricky_strings)
    elif operation == "remove":
        envelope.pop(field, None)
    elif operation == "retype":
        envelope[field] = draw(json_values)
    elif operation == "strange":
        kind = FIELD_KINDS[field]
        if kind == "str":
            envelope[field] = draw(tricky_strings)
        elif kind == "number":
            envelope[field] = draw(tricky_numbers)
        elif kind == "list":
            envelope[field] = draw(st.lists(tricky_strings | json_values, max_size=3))
        else:
            envelope[field] = draw(st.dictionaries(tricky_strings, json_values, max_size=3))
    else:
        # Deep nesting inside an Any-typed field: up to a few thousand levels, a message of a few
        # kilobytes, well inside any NATS payload limit.
        target = draw(st.sampled_from(NESTABLE))
        depth = draw(st.integers(min_value=1, max_value=3000))
        placeholder = "__nest_" + uuid.uuid4().hex
        envelope[target] = [placeholder] if target == "args" else {"k": placeholder}
        text = msgspec.json.encode(envelope)
        return text.replace(msgspec.json.encode(placeholder), _nest(depth, 0), 1)
    return msgspec.json.encode(envelope)


arbitrary_json_bytes = json_values.map(msgspec.json.encode)


def queue_payloads(queue: str) -> st.SearchStrategy[bytes]:
    """Bytes a queue subject could carry: garbage, any JSON, or a mutated envelope."""
    return st.one_of(
        st.binary(max_size=200),
        arbitrary_json_bytes,
        mutated_envelopes(queue),
        mutated_envelopes(queue),  # twice: the most interesting kind gets half the draws
    )


# -- the decoder, without a server ------------------------------------------------------------


def _check_decoded(data: bytes) -> None:
    """The worker's decoder returns an envelope with a usable id and queue, or raises naq's
    ``SerializationError`` saying why (the one error the worker catches to dead-letter a
    message); nothing else may escape."""
    try:
        envelope = decode_envelope(data)
    except SerializationError as exc:
        assert str(exc).startswith("not a naq job envelope: "), str(exc)
        assert len(str(exc)) > len("not a naq job envelope: "), "the error must say what is wrong"
        return
    assert isinstance(envelope, JobEnvelope)
    validate_job_id(envelope.id)
    validate_queue_name(envelope.queue)
    # What decoded is a real envelope: it survives its own encoding unchanged.
    assert decode_envelope(msgspec.json.encode(envelope)) == envelope


def _check_deserialized(data: bytes) -> None:
    """:meth:`naq.Job.deserialize` returns a Job or raises naq's SerializationError, saying so."""
    try:
        job = naq.Job.deserialize(data)
    except SerializationError as exc:
        assert "not a naq job" in str(exc) or "pickle" in str(exc), str(exc)
        return
    assert job.job_id == envelope_decoder.decode(data).id


decoder_settings = settings(max_examples=300, deadline=None, database=None)


@decoder_settings
@given(st.binary(max_size=500))
def test_decoder_on_arbitrary_bytes(data: bytes) -> None:
    """Arbitrary bytes: an envelope or a decode error, never another exception."""
    _check_decoded(data)
    _check_deserialized(data)


@decoder_settings
@given(arbitrary_json_bytes)
def test_decoder_on_arbitrary_json(data: bytes) -> None:
    """Any JSON document: an envelope or a decode error, never another exception."""
    _check_decoded(data)
    _check_deserialized(data)


@decoder_settings
@given(mutated_envelopes())
def test_decoder_on_mutated_envelopes(data: bytes) -> None:
    """Valid envelopes with a field removed, retyped, strange or deeply nested: an envelope or a
    decode error, never another exception (RecursionError included)."""
    _check_decoded(data)
    _check_deserialized(data)


@decoder_settings
@given(valid_envelopes())
def test_decoder_accepts_every_valid_envelope(envelope: dict[str, Any]) -> None:
    """The other side of the property: a well-formed envelope always decodes, to what was sent."""
    decoded = envelope_decoder.decode(msgspec.json.encode(envelope))
    assert decoded.id == envelope["id"] and decoded.fn == envelope["fn"]
    assert decoded.args == envelope.get("args", [])
    assert decoded.kwargs == envelope.get("kwargs", {})
    job = naq.Job.deserialize(msgspec.json.encode(envelope))
    assert job.job_id == envelope["id"]


# -- the worker, against a real server --------------------------------------------------------

Q = "fuzzq"

#: Header names JetStream acts on in ways that are not naq's business (expiry, expectations);
#: generated headers steer clear of them, the ones naq and JetStream use are sent on purpose.
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
    lambda name: not name.lower().startswith("nats-")
) | st.sampled_from(["Naq-Signature", "Nats-Msg-Id", "KV-Operation", "Content-Type"])
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
)
headers_strategy = st.none() | st.dictionaries(header_names, header_values, max_size=3)


def _expected_dead_letter(payload: bytes) -> str | None:
    """Why ``payload`` must be dead-lettered, or None when it is a job naq could have enqueued.

    A message the decoder refuses is malformed; so is an envelope whose id or queue naq itself
    would refuse at enqueue time: the id is a KV key and a message id, the queue part of a
    subject, so such a job can't be run and recorded like any other.
    """
    try:
        envelope = envelope_decoder.decode(payload)
    except Exception as exc:  # RecursionError too: whatever the decoder can't read is malformed
        return f"undecodable ({type(exc).__name__})"
    try:
        validate_job_id(envelope.id)
        validate_queue_name(envelope.queue)
    except NaqException as exc:
        return str(exc)
    if envelope.result_ttl is not None and not 1 <= envelope.result_ttl <= MAX_TTL_SECONDS:
        return f"result_ttl {envelope.result_ttl} is one enqueue refuses"
    if envelope.queue != Q:
        return f"names queue {envelope.queue!r} but is published on {Q!r}"
    return None


class _ErrorLog(logging.Handler):
    """Keeps the worker's ERROR records: an unexpected error handling a message, a result that
    could not be stored."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage()[:300])


async def _publish_and_check(url: str, messages: list[tuple[bytes, dict[str, str] | None]]) -> None:
    errors = _ErrorLog()
    worker_log = logging.getLogger("naq.worker")
    worker_log.addHandler(errors)
    nc = await nats.connect(url)
    letters: list[DeadLetter] = []

    async def collect(msg: Any) -> None:
        letters.append(dead_letter_decoder.decode(msg.data))

    try:
        # Every dead letter, whatever queue its (possibly forged) envelope names.
        await nc.subscribe(f"{prefix()}.failed.>", cb=collect)
        await nc.flush()
        js = nc.jetstream()
        async with running_worker(Q, allowed_modules=["tests.fuzz_jobs"], concurrency=4) as worker:
            stored: list[bytes] = []
            for payload, headers in messages:
                try:
                    ack = await js.publish(f"{prefix()}.queue.{Q}", payload, headers=headers)
                except nats.js.errors.Error:
                    continue  # refused by JetStream itself (a header it acts on): never reaches naq
                if not ack.duplicate:
                    stored.append(payload)

            expected = {payload: _expected_dead_letter(payload) for payload in stored}
            missing: list[str] = []

            async def all_handled() -> bool:
                missing.clear()
                by_payload = Counter(letter.payload for letter in letters)
                for payload, reason in expected.items():
                    if by_payload[payload]:
                        continue
                    if reason is None:
                        envelope = envelope_decoder.decode(payload)
                        with contextlib.suppress(naq.JobNotFoundError):  # not seen yet
                            info = await naq.get_job(envelope.id)
                            if info.status in JobStatus.ENDED:
                                continue
                    missing.append(f"{payload[:120]!r} (must be dead-lettered: {reason})")
                return not missing

            try:
                await wait_until(all_handled, timeout=10, interval=0.1)
            except AssertionError:
                raise AssertionError(
                    f"{len(missing)} of {len(stored)} messages neither dead-lettered nor ended "
                    f"within 10 s:\n" + "\n".join(missing) + f"\nworker errors: {errors.records}"
                ) from None

            # The worker is still at work: a job enqueued after all the garbage runs.
            job = await naq.Queue(Q).enqueue(fuzz_jobs.accept, "after the garbage")
            await job.result(timeout=10)
            assert worker.status in (naq.WorkerStatus.IDLE, naq.WorkerStatus.BUSY)

        by_payload = Counter(letter.payload for letter in letters)
        for letter in letters:
            assert letter.payload in expected, f"dead letter for a message never sent: {letter}"
            assert letter.reason.strip(), letter
            assert "Traceback" not in letter.reason, letter.reason
        for payload, reason in expected.items():
            if reason is not None:
                assert by_payload[payload] == 1, (payload[:120], by_payload[payload], reason)
            else:
                assert by_payload[payload] <= 1, (payload[:120], by_payload[payload])
            if reason and reason.startswith("undecodable"):
                (letter,) = [letter for letter in letters if letter.payload == payload]
                # Nothing could be read from it: the letter names the queue it came from and why.
                assert letter.queue == Q and letter.job_id is None, letter
                assert letter.reason.startswith("malformed message: "), letter.reason
                assert len(letter.reason) > len("malformed message: "), letter.reason
        assert errors.records == [], errors.records
    finally:
        worker_log.removeHandler(errors)
        await nc.close()
        await naq.disconnect()


messages_strategy = st.lists(
    st.tuples(queue_payloads(Q), headers_strategy),
    min_size=4,
    max_size=12,
    unique_by=lambda message: message[0],
)


@pytest.mark.timeout(120)
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    # Each example runs against the server (a worker start, a batch, a drain): shrinking a
    # failure would rerun it dozens of times, so a failing batch is reported as found.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(messages=messages_strategy)
# Found by this test: a result TTL nats-server refuses left the job delivered again forever.
@example(
    messages=[
        (
            b'{"id":"ttl-1","fn":"tests.fuzz_jobs:accept","queue":"fuzzq","enqueued_at":1.0,'
            b'"result_ttl":9223372036854775808}',
            None,
        ),
        (
            b'{"id":"ttl-2","fn":"tests.fuzz_jobs:accept","queue":"fuzzq","enqueued_at":1.0,'
            b'"result_ttl":0}',
            None,
        ),
    ]
)
def test_worker_dead_letters_garbage_and_keeps_going(
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    messages: list[tuple[bytes, dict[str, str] | None]],
) -> None:
    """Batches of 4-12 generated messages (10 batches, plus the examples) on a queue subject with a
    worker running: each stored message ends as exactly one dead letter with its bytes and a
    readable reason (or, for a well-formed job, with an outcome), the worker logs no unexpected
    error, and a valid job enqueued afterwards still runs."""
    # A fresh namespace per batch: the stream, consumer and dead letters of one batch can't
    # satisfy the checks of the next.
    monkeypatch.setenv("NAQ_PREFIX", "fz" + uuid.uuid4().hex[:10])
    asyncio.run(_publish_and_check(nats_url, messages))


def test_strategies_reach_the_interesting_cases() -> None:
    """The generators really produce what the properties claim to cover (so a weakened strategy
    can't make the properties pass vacuously): undecodable bytes, decodable-but-refused
    envelopes, well-formed jobs, and nesting deep enough to matter."""
    seen: Counter[str] = Counter()

    # Derandomized: a coverage check must not pass or fail on the luck of the draw.
    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(queue_payloads(Q))
    def classify(payload: bytes) -> None:
        reason = _expected_dead_letter(payload)
        if reason is None:
            seen["well-formed"] += 1
        elif reason.startswith("undecodable"):
            seen["undecodable"] += 1
        else:
            seen["refused"] += 1
        if payload.count(b"[") > 1000:
            seen["deep"] += 1

    classify()
    assert min(seen[k] for k in ("well-formed", "undecodable", "refused", "deep")) > 0, seen
