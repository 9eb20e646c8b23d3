"""The far end of bench_latency.py's two-process raw floor: a plain nats-py push consumer.

Run as ``python -m bench.raw_consumer URL STREAM SUBJECT COUNT``. It binds a durable push
consumer to ``STREAM`` (filtered on ``SUBJECT``), prints ``ready`` once subscribed, and, after
``COUNT`` messages, one JSON line: each message's latency in seconds (arrival ``time.time()``
minus the ``time.time()`` the message carries), then exits. This is what naq's worker is to
its producer, without naq: another process, the same host and clock.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import nats


async def consume(
    url: str, stream: str, subject: str, count: int, ready: Callable[[], None]
) -> list[float]:
    """Latencies of the first ``count`` messages on ``subject``, in seconds; ``ready()`` is
    called once the consumer is bound (bench_latency.py also runs this in its own process)."""
    nc = await nats.connect(url)
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        latencies.append(time.time() - float(msg.data))
        await msg.ack()
        if len(latencies) >= count:
            done.set()

    try:
        await nc.jetstream().subscribe(
            subject, durable="rawconsumer", stream=stream, cb=on_msg, manual_ack=True
        )
        ready()
        await done.wait()
    finally:
        await nc.close()
    return latencies


def main(argv: list[str]) -> int:
    url, stream, subject, count = argv
    latencies = asyncio.run(
        consume(url, stream, subject, int(count), lambda: print("ready", flush=True))
    )
    print(json.dumps(latencies), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
