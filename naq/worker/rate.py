"""Rate limits that hold across workers: a queue's job starts spaced by its rate.

A rate-limited queue has one key in the rates bucket: the time its next start is due
(the "theoretical arrival time" of the generic cell rate algorithm). A worker with one
of the queue's jobs in hand takes the next turn by moving that time on one interval
with a compare-and-set, and starts the job when its turn comes. Turns may lie up to one
second in the past, so an idle queue lets a second's worth start at once; beyond that,
starts follow the rate whichever worker, on whichever machine, takes them. A queue
without a rate has no gate and costs nothing. The workers' clocks are taken to agree
(NTP), as the heartbeats' already are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from naq.broker import Broker
from naq.errors import NaqException
from naq.limits import limits_of
from naq.transport import Msg, NotFound, RevisionConflict

log = logging.getLogger("naq.worker")

#: Jobs of a rate-limited queue a worker holds waiting for their turn (more would only
#: keep them from other workers, and its slots from its other queues).
GATE_HOLD = 1
#: Seconds of starts an idle queue may catch up at once (the burst).
BURST = 1.0


class RateGate:
    """One rate-limited queue's turns, as one worker takes them."""

    def __init__(self, broker: Broker, queue: str, per_second: float) -> None:
        self._broker = broker
        self.queue = queue
        self.per_second = per_second
        #: Jobs in hand waiting for their turn.
        self.waiting = 0

    async def wait_turn(self) -> None:
        """Take the queue's next turn and wait until it comes.

        Raises:
            NaqException: the rates bucket can't be reached.
        """
        interval = 1.0 / self.per_second
        # A second's worth of starts at once: the first turn may lie that far back.
        tolerance = max(0.0, BURST - interval)
        kv = await self._broker.rates_kv()
        self.waiting += 1
        try:
            while True:
                entry = await kv.get(self.queue)
                now = time.time()
                due = float(entry.value) if entry is not None else 0.0
                turn = max(due, now - tolerance)
                value = repr(turn + interval).encode()
                try:
                    if entry is None:
                        await kv.create(self.queue, value)
                    else:
                        await kv.update(self.queue, value, last=entry.revision)
                except RevisionConflict:
                    continue  # another worker took that turn: take the next
                break
            if turn > now:
                await asyncio.sleep(turn - now)
        finally:
            self.waiting -= 1


class RateGates:
    """The gates of a worker's rate-limited queues, kept in step with their limits."""

    def __init__(self, broker: Broker, queues: list[str], gates: dict[str, RateGate]) -> None:
        self._broker = broker
        self._queues = queues
        #: queue -> its gate (the worker's shared table); only rate-limited queues have one.
        self.gates = gates

    async def start(self) -> None:
        """Read each queue's rate, and follow changes to it."""
        names = self._broker.names
        for queue in self._queues:
            await self.refresh(queue)
            await self._broker.connection.subscribe(
                names.queue_limits_subject(queue), self._on_changed
            )

    async def refresh_all(self) -> None:
        """Read every queue's rate again (after a reconnect: a change may have been missed)."""
        for queue in self._queues:
            with contextlib.suppress(NaqException):
                await self.refresh(queue)

    async def refresh(self, queue: str) -> None:
        """Read ``queue``'s rate and open, change or close its gate to match."""
        try:
            limits = limits_of(await self._broker.queue_consumer(queue))
        except NotFound:
            return
        per_second = limits.per_second
        gate = self.gates.get(queue)
        if per_second is None:
            if self.gates.pop(queue, None) is not None:
                log.info("queue %s: no rate limit any more", queue)
        elif gate is None or gate.per_second != per_second:
            if gate is not None:
                gate.per_second = per_second
            else:
                self.gates[queue] = RateGate(self._broker, queue, per_second)
            log.info("queue %s: job starts limited to %s", queue, limits.rate)

    async def _on_changed(self, msg: Msg) -> None:
        queue = msg.subject.rsplit(".", 1)[-1]
        if queue in self._queues:
            try:
                await self.refresh(queue)
            except NaqException as exc:
                log.warning("queue %s: reading its new limits failed: %s", queue, exc)
