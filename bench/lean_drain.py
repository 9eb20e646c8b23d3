"""The drain floors of bench_core.py: pull loops with as little Python per message as possible.

Both send their own pull requests (two in flight) and handle the replies in a subscription
callback, with no per-message futures or tasks:

- :func:`lean_ack_drain` acks each message: the floor of consuming a work queue;
- :func:`lean_naq_writes_drain` makes, per message, exactly the NATS writes a naq worker makes
  for a no-op job, of the same sizes: the result create (acknowledged, first-write-wins), and
  once its ack is in, the completed status (unacknowledged), the outcome-log entry
  (unacknowledged) and the job's ack. What naq's worker costs beyond it is its own Python work.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from naq.broker import EXPECTED_LAST_SUBJECT_SEQ, TTL_HEADER, Broker
from naq.models import JobStatus, ResultRecord, decode_envelope, record_encoder, status_of
from naq.results import encode_result

#: A naq job envelope starts with its id: ``{"id":"<32 hex digits>",...``.
_ID_START = b'{"id":"'
_ID_END = len(_ID_START) + 32


async def lean_pull(
    nc: Any,
    stream: str,
    consumer: str,
    *,
    batch: int,
    n: int,
    handle: Callable[[Any], Awaitable[None]],
    done: asyncio.Event,
    timeout: float = 120.0,
) -> float:
    """Pull ``n`` messages from ``stream``'s durable ``consumer`` and ``await handle(msg)``
    each; the seconds from the first request until ``done`` is set and the client has
    flushed what it sent.

    Requests of ``batch`` go on ``$JS.API.CONSUMER.MSG.NEXT`` by hand; one more goes out
    whenever no more than one batch is owed, so the server never waits for a request. A
    request that ends early (a status reply: expired, or nothing left) is replaced while
    messages are still due.
    """
    inbox = nc.new_inbox()
    api_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
    request = json.dumps({"batch": batch, "expires": 5_000_000_000}).encode()
    state = {"received": 0, "owed": 0}

    async def ask() -> None:
        state["owed"] += batch
        await nc.publish(api_subject, request, reply=inbox)

    async def on_msg(msg: Any) -> None:
        if msg.headers and msg.headers.get("Status"):
            if state["received"] < n:
                await ask()
            return
        await handle(msg)
        state["received"] += 1
        state["owed"] -= 1
        if state["received"] < n and state["owed"] <= batch:
            await ask()

    sub = await nc.subscribe(inbox, cb=on_msg)
    try:
        t0 = time.perf_counter()
        await ask()
        await ask()
        await asyncio.wait_for(done.wait(), timeout)
        await nc.flush()
        return time.perf_counter() - t0
    finally:
        await sub.unsubscribe()


async def lean_ack_drain(nc: Any, stream: str, consumer: str, *, batch: int, n: int) -> float:
    """Seconds to pull and ack ``n`` messages (see :func:`lean_pull`)."""
    done = asyncio.Event()
    acked = [0]

    async def handle(msg: Any) -> None:
        await nc.publish(msg.reply, b"")
        acked[0] += 1
        if acked[0] >= n:
            done.set()

    return await lean_pull(nc, stream, consumer, batch=batch, n=n, handle=handle, done=done)


@dataclass(frozen=True)
class NaqWrites:
    """The messages a naq worker writes when a no-op job of ``queue`` completes, as
    templates: the job id goes between each ``*_head`` and ``*_tail``.

    Built with naq's own records and encoders (the worker's fields: a worker name of the
    same form, attempt 1, start and end times), so every message has the size of naq's.
    """

    result_subject: str
    result_head: bytes
    result_tail: bytes
    result_headers: dict[str, str]
    status_subject: str
    status_head: bytes
    status_tail: bytes
    status_headers: dict[str, str]
    outcome_subject: str

    @classmethod
    def of(cls, broker: Broker, envelope_payload: bytes) -> NaqWrites:
        """The writes for jobs like the one ``envelope_payload`` encodes."""
        if envelope_payload[: len(_ID_START)] != _ID_START:
            raise RuntimeError(f"a job envelope no longer starts with its id: {envelope_payload!r}")
        envelope = decode_envelope(envelope_payload)
        settings, names = broker.settings, broker.names
        worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        now = time.time()
        result = encode_result(
            settings,
            ResultRecord(
                job_id=envelope.id,
                status=JobStatus.COMPLETED,
                finished_at=now,
                result=None,
                worker=worker,
                attempt=1,
                started_at=now,
            ),
        )
        status = record_encoder.encode(
            status_of(
                envelope,
                JobStatus.COMPLETED,
                updated_at=now,
                attempt=1,
                started_at=now,
                ended_at=now,
                worker=worker,
                meta=dict(envelope.meta),
            )
        )
        result_ttl = envelope.result_ttl or settings.default_result_ttl
        result_head, result_tail = _split(result, envelope.id)
        status_head, status_tail = _split(status, envelope.id)
        return cls(
            result_subject=broker.kv_subject(names.results_bucket, ""),
            result_head=result_head,
            result_tail=result_tail,
            result_headers={
                TTL_HEADER: str(max(1, int(result_ttl))),
                EXPECTED_LAST_SUBJECT_SEQ: "0",
            },
            status_subject=broker.kv_subject(names.status_bucket, ""),
            status_head=status_head,
            status_tail=status_tail,
            status_headers={TTL_HEADER: str(settings.history_ttl(result_ttl))},
            outcome_subject=names.outcome_subject(envelope.queue, JobStatus.COMPLETED),
        )

    def sizes(self, job_id_length: int = 32) -> dict[str, int]:
        """Payload bytes of each write (for the results)."""
        return {
            "result": len(self.result_head) + job_id_length + len(self.result_tail),
            "status": len(self.status_head) + job_id_length + len(self.status_tail),
            "outcome": job_id_length,
        }


def _split(encoded: bytes, job_id: str) -> tuple[bytes, bytes]:
    head, found, tail = encoded.partition(job_id.encode())
    if not found or job_id.encode() in tail:
        raise RuntimeError(f"expected the job id once in {encoded!r}")
    return head, tail


async def lean_naq_writes_drain(
    nc: Any, stream: str, consumer: str, writes: NaqWrites, *, batch: int, n: int
) -> float:
    """Seconds to drain ``n`` naq job messages making naq's writes for each (see module).

    Every result create must be stored (RuntimeError otherwise): the job ids are fresh.
    """
    done = asyncio.Event()
    ack_inbox = nc.new_inbox()
    ack_prefix = len(ack_inbox) + 1
    #: job id -> its message's ack subject, while its result create awaits its ack.
    awaiting: dict[str, str] = {}
    counts = {"ended": 0, "refused": 0}
    w = writes

    async def handle(msg: Any) -> None:
        job_id = msg.data[len(_ID_START) : _ID_END]
        key = job_id.decode()
        awaiting[key] = msg.reply
        await nc.publish(
            w.result_subject + key,
            w.result_head + job_id + w.result_tail,
            reply=f"{ack_inbox}.{key}",
            headers=w.result_headers,
        )

    async def on_result_ack(ack: Any) -> None:
        key = ack.subject[ack_prefix:]
        reply = awaiting.pop(key)
        if not ack.data or b'"error"' in ack.data:
            counts["refused"] += 1
        else:
            job_id = key.encode()
            await nc.publish(
                w.status_subject + key,
                w.status_head + job_id + w.status_tail,
                headers=w.status_headers,
            )
            await nc.publish(w.outcome_subject, job_id)
            await nc.publish(reply, b"")
        counts["ended"] += 1
        if counts["ended"] >= n:
            done.set()

    acks = await nc.subscribe(ack_inbox + ".*", cb=on_result_ack)
    try:
        seconds = await lean_pull(nc, stream, consumer, batch=batch, n=n, handle=handle, done=done)
    finally:
        await acks.unsubscribe()
    if counts["refused"]:
        raise RuntimeError(f"{counts['refused']} of {n} result creates refused")
    return seconds
