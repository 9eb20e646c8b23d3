"""The job status changes of the live feed: every one while a person could read them, a
sample of them while they come faster.

Following every change costs the watcher about as much as the worker spends writing it:
at thousands of jobs a second a screen would take a core from the system it shows. So
the follower reads every change only while they come slower than ``SAMPLE_ABOVE`` a
second (measured on the server: the status stream's last sequence, once a second). Past
that it *samples*: every ``SAMPLE_EVERY`` seconds it reads the newest ``SAMPLE_SIZE``
changes and shows the completed ones among them, and says so (:class:`JobSampling`).
Nothing an operator needs is sampled away:

- running, retrying, failed and cancelled jobs come on their own core-NATS subject
  (:data:`naq.store.NOTABLE`), all of them (up to ``NOTABLE_MAX`` a second);
- a job shown while it was not ended yet is looked up again until it has ended, so no
  row is left saying pending or running after the job moved on (past ``MAX_OPEN`` such
  jobs, the oldest leaves the screen instead);
- changes matching the screen's filter are all read (the filter is matched on the raw
  record first, so only matches are decoded).

Once the rate has stayed under ``FOLLOW_BELOW`` for two samples it looks every open job
up once more and reads every change again, starting with the newest
``RECENT_STATUS_CHANGES``, as when the feed starts: the screen is exact again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from naq.broker import Broker, decode_or_none
from naq.models import JobStatus, StatusRecord, status_decoder
from naq.transport import Msg

#: Status changes read back from history when the feed starts, or reads every change again.
RECENT_STATUS_CHANGES = 3000
#: Changes a second past which they are sampled, and under which (for two samples in a row)
#: they are read each again.
SAMPLE_ABOVE = 300.0
FOLLOW_BELOW = 150.0
#: Seconds between samples, and the newest changes each reads.
SAMPLE_EVERY = 1.0
SAMPLE_SIZE = 25
#: Seconds between looks at the rate while every change is read.
RATE_CHECK = 0.5
#: Notable changes shown a second, at most, while sampling.
NOTABLE_MAX = 200
#: Jobs shown before they ended, looked up again at each sample (the oldest first):
#: OPEN_CHECKS, twice as many after a look that found most of them changed (up to
#: OPEN_CHECKS_MAX: a rush of jobs that ended is settled in seconds), half as many after
#: one that found few (jobs still waiting cost little); and the most remembered.
OPEN_CHECKS = 40
OPEN_CHECKS_MAX = 640
MAX_OPEN = 2000

Emit = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class JobSampling:
    """The job changes shown are a sample: ``rate`` changes a second, about one in
    ``every`` of the completed ones shown (every notable one, and every match of the
    filter, still are)."""

    rate: float
    every: int


class JobFollower:
    """Emits ``("job", id, StatusRecord)`` for the changes a screen shows, ``("job", id,
    None)`` when a job leaves it, and ``("sampling", "jobs", JobSampling | None)`` as it
    starts and stops sampling."""

    def __init__(self, broker: Broker, emit: Emit) -> None:
        self._broker = broker
        self._emit = emit
        self._filter: re.Pattern[bytes] | None = None
        self._filter_changed = asyncio.Event()
        #: Jobs last shown in a state that is not an end, oldest first, and when the
        #: record shown was written.
        self._open: dict[str, float] = {}
        self._checks = OPEN_CHECKS
        self._notable_second = 0
        self._notable_count = 0

    def set_filter(self, text: str) -> None:
        """Show every change matching ``text`` (case-insensitive), sampling or not."""
        text = text.strip()
        self._filter = re.compile(re.escape(text.encode()), re.IGNORECASE) if text else None
        self._filter_changed.set()

    async def run(self) -> None:
        """Follow the changes until cancelled (a lost connection ends it with its error)."""
        while True:
            await self._every_change()
            await self._sample()

    # -- every change ----------------------------------------------------------------------

    async def _every_change(self) -> None:
        """Read each change (the newest history first) until they come too fast."""

        async def follow() -> None:
            async with self._broker.follow_statuses(recent=RECENT_STATUS_CHANGES) as messages:
                async for msg in messages:
                    self._show(msg.data)

        # Too fast already? Then not one change is read each (a second of them at thousands
        # a second would cost the screen as much as sampling does in a minute).
        last, at = await self._broker.status_changes(), time.monotonic()
        await asyncio.sleep(RATE_CHECK)
        seq, now = await self._broker.status_changes(), time.monotonic()
        if (seq - last) / (now - at) > SAMPLE_ABOVE:
            return
        reader = asyncio.create_task(follow())
        try:
            last, at = seq, now
            while True:
                done, _ = await asyncio.wait({reader}, timeout=RATE_CHECK)
                if done:
                    reader.result()  # its error (the connection went), or it ended
                    return
                seq, now = await self._broker.status_changes(), time.monotonic()
                if (seq - last) / (now - at) > SAMPLE_ABOVE:
                    return
                last, at = seq, now
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    # -- a sample --------------------------------------------------------------------------

    async def _sample(self) -> None:
        """Sample the changes until they have come slowly for two samples."""
        broker = self._broker
        notable = await broker.connection.subscribe(
            broker.names.job_events_subject("*"), self._on_notable
        )
        matching: asyncio.Task[None] | None = None
        try:
            last, at = await broker.status_changes(), time.monotonic()
            calm = 0
            while calm < 2:
                matching = await self._follow_matches(matching)
                self._filter_changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._filter_changed.wait(), SAMPLE_EVERY)
                seq, now = await broker.status_changes(), time.monotonic()
                rate = (seq - last) / max(now - at, 1e-3)
                last, at = seq, now
                calm = calm + 1 if rate < FOLLOW_BELOW else 0
                await self._show_newest(seq)
                await self._look_again()
                every = max(1, round(rate * SAMPLE_EVERY / SAMPLE_SIZE))
                self._emit("sampling", "jobs", JobSampling(rate=round(rate, 1), every=every))
            # Every change is read from here on, from the newest few thousand: an open job
            # that ended before those would never show it.
            ids = list(self._open)
            for start in range(0, len(ids), OPEN_CHECKS_MAX):
                await self._look_up(ids[start : start + OPEN_CHECKS_MAX])
        finally:
            with contextlib.suppress(Exception):
                await notable.unsubscribe()
            if matching is not None:
                matching.cancel()
        self._emit("sampling", "jobs", None)

    async def _show_newest(self, seq: int) -> None:
        """The completed jobs among the newest changes (a pending one would go stale)."""
        seqs = list(range(max(1, seq - SAMPLE_SIZE + 1), seq + 1))
        for data in await self._broker.status_changes_at(seqs):
            record = decode_or_none(status_decoder, data)
            if record is not None and record.status == JobStatus.COMPLETED:
                self._show_record(record)

    async def _look_again(self) -> None:
        """Read the oldest open jobs again: each shows its end once it has one."""
        ids = list(self._open)[: self._checks]
        changed = await self._look_up(ids)
        if changed * 2 > len(ids):
            self._checks = min(self._checks * 2, OPEN_CHECKS_MAX)
        elif changed * 4 < len(ids):
            self._checks = max(self._checks // 2, OPEN_CHECKS)

    async def _look_up(self, ids: list[str]) -> int:
        """Read these open jobs again and show those that changed; how many did."""
        records = await asyncio.gather(
            *(self._broker.read_status(job_id) for job_id in ids), return_exceptions=True
        )
        changed = 0
        for job_id, record in zip(ids, records, strict=True):
            shown = self._open.get(job_id)
            if shown is None or isinstance(record, BaseException):
                continue  # ended or left meanwhile; after an error, looked up next time
            if record is not None and record.updated_at <= shown:
                # Not changed (or already shown newer): nothing to draw; its turn comes
                # again after the others'.
                del self._open[job_id]
                self._open[job_id] = shown
                continue
            changed += 1
            if record is None:
                self._forget(job_id)  # expired meanwhile
            else:
                self._show_record(record)
        return changed

    async def _on_notable(self, msg: Msg) -> None:
        second = int(time.monotonic())
        if second != self._notable_second:
            self._notable_second, self._notable_count = second, 0
        self._notable_count += 1
        if self._notable_count <= NOTABLE_MAX:
            self._show(msg.data)

    async def _follow_matches(self, task: asyncio.Task[None] | None) -> asyncio.Task[None] | None:
        """While a filter is set, a task reading every change for those it matches."""
        if task is not None and (self._filter is None or self._filter_changed.is_set()):
            task.cancel()
            task = None
        if task is None and self._filter is not None:
            task = asyncio.create_task(self._matches(self._filter))
        return task

    async def _matches(self, pattern: re.Pattern[bytes]) -> None:
        async with self._broker.follow_statuses() as messages:
            async for msg in messages:
                if pattern.search(msg.data):
                    self._show(msg.data)

    # -- showing -----------------------------------------------------------------------------

    def _show(self, data: bytes) -> None:
        record = decode_or_none(status_decoder, data)
        if record is not None:
            self._show_record(record)

    def _show_record(self, record: StatusRecord) -> None:
        job_id = record.job_id
        self._open.pop(job_id, None)
        if record.status not in JobStatus.ENDED:
            self._open[job_id] = record.updated_at  # the newest last
            if len(self._open) > MAX_OPEN:
                self._forget(next(iter(self._open)))
        self._emit("job", job_id, record)

    def _forget(self, job_id: str) -> None:
        """Stop following an open job, and take it off the screen: no longer looked up
        again, its row would keep saying pending or running after the job moved on."""
        self._open.pop(job_id, None)
        self._emit("job", job_id, None)
