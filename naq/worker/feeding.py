"""Taking jobs: the worker's pull requests matched to its free slots, queue by queue.

A free slot goes to a queue that has a job, at once. With several queues, the worker
*asks* them in turn (a request the server answers at once with what the queue holds):
a queue with jobs fills the slots it is asked for, one that comes up short leaves them
to the next. Only once every queue has come up short does it *watch* them (long polls),
so that the next job on any of them takes a slot the moment it comes. Together the
watches may ask for more than the free slots: they are called off as soon as every slot
is taken (a job already on its way waits for the next free slot), so they never keep a
job from an idle worker. With one queue a watch does both: it takes what the queue has,
then waits for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable

from naq.transport import Msg, Puller
from naq.worker.rate import GATE_HOLD
from naq.worker.state import WorkerState

log = logging.getLogger("naq.worker")

#: Most messages asked for in one pull.
MAX_BATCH = 256
#: How long a watch (a pull request on an empty queue) waits for a message.
PULL_WAIT = 10.0
#: Seconds a queue that came up short is not asked again while another queue has jobs.
ASK_AGAIN = 0.1
#: Burst mode: first and longest pause between looks at the queues while they hold jobs.
BURST_RECHECK = 0.05
BURST_RECHECK_MAX = 0.5
#: Jobs whose outcome may be on its way to the server while their slots run the next ones:
#: the concurrency, but never fewer than this, so a worker with one slot fetches its next
#: job during its last one's result round trip instead of after it.
MIN_RECORDING = 8


class Feeder:
    """Keeps the pull requests of a worker's queues matched to its free slots."""

    def __init__(self, state: WorkerState, deliver: Callable[[str, Msg], None]) -> None:
        self._state = state
        self._deliver = deliver
        self._pullers: list[Puller] = []
        self._queue_of: dict[int, str] = {}
        concurrency = state.concurrency
        #: The most one queue is asked for at a time: in strict order the first queue may
        #: take every slot; fairly, each queue gets its share so every one gets its turn.
        share = concurrency if state.strict_order else math.ceil(concurrency / len(state.queues))
        self._per_queue = max(1, share)
        # Ask in batches once a quarter of a queue's share is free, so a busy
        # worker sends few requests; an empty request list always gets one.
        self._threshold = max(1, min(self._per_queue, MAX_BATCH) // 4)
        self._recording_limit = max(concurrency, MIN_RECORDING)
        self._turn = 0

    async def start(self) -> None:
        """Make each queue's consumer (if need be) and its puller."""
        state = self._state
        broker = state.broker
        connection = broker.connection
        wake = state.wake.set
        # A request answered in full leaves slots free only when several queues share them
        # (one queue is never asked for more than its free slots).
        on_filled = wake if len(state.queues) > 1 else None
        for queue in state.queues:
            consumer, ack_wait = await broker.take_consumer(queue, set_ack_wait=state.sets_ack_wait)
            # A consumer another worker made with a shorter ack wait sets this one's pace.
            state.ack_wait = min(state.ack_wait, ack_wait)
            puller = Puller(
                connection,
                broker.names.jobs_stream,
                consumer,
                deliver=functools.partial(self._deliver, queue),
                on_change=wake,
                expires=PULL_WAIT,
                on_filled=on_filled,
            )
            await puller.start()
            self._pullers.append(puller)
            self._queue_of[id(puller)] = queue
        for queue, puller in zip(self._state.queues, self._pullers, strict=True):
            await connection.subscribe(
                broker.names.queue_resumed_subject(queue),
                functools.partial(self._on_resumed, puller),
            )

    async def run(self) -> None:
        """Match the pull requests to the free slots until the worker stops."""
        wake, stopping = self._state.wake, self._state.stopping
        while not stopping.is_set():
            wake.clear()
            await self._round()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=1.0)

    def _order(self) -> list[Puller]:
        """The queues in the order they are asked this round: in strict order, as given
        (a queue is asked only for the slots the ones before it left); fairly, starting
        with a different one each round, so that when slots are fewer than queues each
        gets its turn."""
        pullers = self._pullers
        if self._state.strict_order:
            return pullers
        self._turn = turn = (self._turn + 1) % len(pullers)
        return pullers[turn:] + pullers[:turn]

    def _room(self, puller: Puller) -> int:
        """The most ``puller``'s queue may be asked for: its share, less what is on its
        way; for a rate-limited queue, what its gate holds waiting counts too."""
        room = self._per_queue - puller.outstanding
        gates = self._state.gates
        if gates:
            gate = gates.get(self._queue_of[id(puller)])
            if gate is not None:
                room = min(room, GATE_HOLD - gate.waiting - puller.outstanding)
        return room

    async def _round(self) -> None:
        state = self._state
        pullers = self._pullers
        now = time.monotonic()
        for puller in pullers:
            puller.expire_lost()
        free = state.concurrency - len(state.running) - len(state.backlog)
        if state.jobs_left is not None:
            # Its last jobs (max_jobs): never ask for one it would not start, which would be
            # on its way when it stops and wait out the ack wait before another worker.
            owed = sum(puller.outstanding for puller in pullers)
            free = min(free, state.jobs_left - len(state.backlog) - owed)
        if free <= 0:
            # Every slot is taken: a watch would only hold a job another worker could run
            # now. The next free slot asks those queues again.
            for puller in pullers:
                puller.cancel_watches()
            return
        if len(state.recording) >= self._recording_limit:
            return  # the server is behind with outcomes: let it catch up
        if len(pullers) > 1 and not await self._ask(pullers, free, now):
            return
        # Every queue came up short (or there is only one: a watch also takes what it has
        # now), and slots are free: watch the queues.
        for puller in pullers:
            if puller.cooldown_until > now:
                continue
            want = min(free - puller.watching, self._room(puller), MAX_BATCH)
            if want > 0 and (want >= self._threshold or puller.outstanding == 0):
                await self._send(puller, puller.watch, want, now)

    async def _ask(self, pullers: list[Puller], free: int, now: float) -> bool:
        """Ask the queues that may have jobs for the free slots; whether every queue has
        come up short (so that it is time to watch them)."""
        # While a queue has jobs, one that came up short is asked again now and then, not
        # each time: it is left to its watch only once every queue has come up short.
        busy = any(p.empty_at is None and not p.watching for p in pullers)
        asking = sum(puller.asking for puller in pullers)
        for puller in self._order():
            if puller.watching or puller.cooldown_until > now:
                continue
            if puller.empty_at is not None and (not busy or now - puller.empty_at < ASK_AGAIN):
                continue
            # Another queue's watch holds no slot: the job it may bring waits for one.
            want = min(free - asking, self._room(puller), MAX_BATCH)
            if want > 0 and (want >= self._threshold or puller.outstanding == 0):
                if await self._send(puller, puller.ask, want, now):
                    asking += want
        return not asking and all(
            p.empty_at is not None or p.watching or p.cooldown_until > now for p in pullers
        )

    async def _send(
        self,
        puller: Puller,
        request: Callable[[int], Awaitable[None]],
        batch: int,
        now: float,
    ) -> bool:
        """Send one pull request; whether it went (after a failure, its queue pauses)."""
        try:
            await request(batch)
        except Exception as exc:
            log.warning("worker %s: pull request failed (%r)", self._state.name, exc)
            puller.cooldown_until = now + 1.0
            return False
        return True

    async def burst_watch(self) -> None:
        """Burst mode: stop once no queue has pending or unacked jobs and nothing runs here."""
        state = self._state
        broker = state.broker
        pause = BURST_RECHECK
        while True:
            await state.idle.wait()
            idle = True
            for queue in state.queues:
                info = await broker.queue_consumer(queue)
                if info.num_pending or info.num_ack_pending:
                    idle = False
                    break
            if idle and not state.running and not state.recording:
                state.stopping.set()
                return
            # e.g. the last ack is still on its way, or another worker holds jobs: look again,
            # less often the longer it lasts.
            await asyncio.sleep(pause)
            pause = min(pause * 2, BURST_RECHECK_MAX)

    def reset(self) -> None:
        """Forget every pull request (after a reconnect the server has dropped them)."""
        for puller in self._pullers:
            puller.reset()

    async def stop(self) -> None:
        """End every pull request."""
        for puller in self._pullers:
            await puller.stop()

    async def _on_resumed(self, puller: Puller, _msg: Msg) -> None:
        try:
            await puller.kick()
        except Exception as exc:
            log.debug("kick after resume failed: %r", exc)
