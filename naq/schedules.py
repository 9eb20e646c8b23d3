"""Schedules: delayed and recurring jobs kept in the scheduled-jobs bucket.

Every change is a compare-and-set on the record's revision, so a scheduler's
write can never undo a pause or a modification made at the same moment.
Times are UNIX seconds in UTC; a naive ``datetime`` is taken as UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter

from naq.broker import Broker, decode_or_none
from naq.errors import ConfigurationError, JobNotFoundError
from naq.models import (
    JobStatus,
    ScheduleRecord,
    ScheduleStatus,
    record_encoder,
    schedule_decoder,
)
from naq.settings import Settings, get_settings
from naq.store import JobStore
from naq.sync import sync_twin
from naq.transport import Bucket, JetStreamError, RevisionConflict

SCHEDULE_STATUSES = (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED, ScheduleStatus.FAILED)
#: Fields ``modify_scheduled_job`` accepts.
MODIFIABLE = frozenset({"cron", "interval", "repeat", "scheduled_timestamp_utc", "timezone"})

_NEXT_INTERVALS: dict[str, Callable[[datetime, int], datetime]] = {}


def next_interval(name: str) -> Callable[[Callable[[datetime, int], datetime]], Any]:
    """Register a function computing a schedule's next run.

    The function gets the due time of the run that just fired (aware, UTC) and
    the number of runs so far, and returns the next run time (a datetime). Use
    it with ``schedule(func, next_interval=name)``; the scheduler process must
    import the module that registers it.
    """

    def register(func: Callable[[datetime, int], datetime]) -> Callable[[datetime, int], datetime]:
        _NEXT_INTERVALS[name] = func
        return func

    return register


def to_timestamp(moment: datetime | float | int, label: str = "time") -> float:
    """UNIX seconds of ``moment``; a naive datetime is taken as UTC.

    Raises:
        ConfigurationError: ``moment`` is not a datetime or a number.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        return float(moment)
    raise ConfigurationError(f"{label}={moment!r} must be a datetime or UNIX seconds")


def to_seconds(value: timedelta | float | int, label: str) -> float:
    """Seconds of a timedelta or number.

    Raises:
        ConfigurationError: not a duration, or negative.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(f"{label}={value!r} must be a timedelta or a number of seconds")
    if seconds < 0:
        raise ConfigurationError(f"{label}={value!r} must not be negative")
    return seconds


def zone(name: str | None) -> ZoneInfo | timezone:
    """The time zone called ``name`` (UTC for None).

    Raises:
        ConfigurationError: unknown zone name.
    """
    if name is None:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown timezone {name!r}") from None


def validate_cron(cron: object, tz: str | None = None) -> str:
    """Return ``cron`` if it is a valid cron expression.

    Raises:
        ConfigurationError: naming the bad expression.
    """
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise ConfigurationError(f"invalid cron expression {cron!r}")
    zone(tz)
    return cron


def next_cron(cron: str, tz: str | None, after: float) -> float:
    """The first time strictly after ``after`` that ``cron`` matches in zone ``tz``."""
    start = datetime.fromtimestamp(after, tz=zone(tz))
    return float(croniter(cron, start).get_next(float))


def validate_repeat(repeat: object) -> int | None:
    """``repeat`` if it is None or an integer >= 1.

    Raises:
        ConfigurationError: naming the bad value.
    """
    if repeat is None:
        return None
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigurationError(f"repeat={repeat!r} must be None or an integer >= 1")
    return repeat


def following_run(record: ScheduleRecord, due: float, now: float) -> float | None:
    """When ``record`` runs next after firing the run due at ``due``; None when done.

    After an outage a recurring schedule runs once, not once per missed tick:
    the next run is the first one after *now*.
    """
    runs = record.runs
    if not record.recurring or (record.repeat is not None and runs >= record.repeat):
        return None
    if record.cron:
        return next_cron(record.cron, record.timezone, max(due, now))
    if record.interval:
        following = due + record.interval
        if following <= now:
            missed = int((now - due) // record.interval)
            following = due + record.interval * (missed + 1)
        return following
    func = _NEXT_INTERVALS.get(record.next_interval or "")
    if func is None:
        raise ConfigurationError(
            f"next_interval function {record.next_interval!r} is not registered in this scheduler"
        )
    value = func(datetime.fromtimestamp(due, tz=timezone.utc), runs)
    return max(to_timestamp(value, "next_interval result"), now)


def run_job_id(schedule_id: str, run_number: int) -> str:
    """Job id of a schedule's ``run_number``-th run (the first run keeps the schedule's id)."""
    return schedule_id if run_number <= 1 else f"{schedule_id}_{run_number}"


def schedule_ids_of_run(job_id: str) -> list[str]:
    """The ids of the schedules whose run ``job_id`` could be (the inverse of
    :func:`run_job_id`): ``job_id`` itself, and ``s`` when it reads ``s_<k>``."""
    ids = [job_id]
    base, _, number = job_id.rpartition("_")
    if base and number.isascii() and number.isdigit() and run_job_id(base, int(number)) == job_id:
        ids.append(base)
    return ids


def schedule_not_found(schedule_id: str) -> JobNotFoundError:
    """The error for an operation on a schedule id naq has no record of."""
    return JobNotFoundError(f"no scheduled job {schedule_id!r}")


class ScheduleStore:
    """Reads and compare-and-set writes of schedule records."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def kv(self) -> Bucket:
        """The scheduled-jobs bucket."""
        return await self.broker.connection.kv(self.broker.names.scheduled_bucket)

    async def add(self, record: ScheduleRecord) -> bool:
        """Store a new schedule; False if one with this id exists already."""
        kv = await self.kv()
        try:
            await kv.create(record.schedule_id, record_encoder.encode(record))
        except RevisionConflict:
            return False
        return True

    async def get(self, schedule_id: str) -> tuple[ScheduleRecord, int] | None:
        """The schedule and its revision, or None."""
        entry = await (await self.kv()).get(schedule_id)
        if entry is None:
            return None
        record = decode_or_none(schedule_decoder, entry.value)
        return (record, entry.revision) if record is not None else None

    async def update(
        self,
        schedule_id: str,
        change: Callable[[ScheduleRecord], ScheduleRecord | None],
        attempts: int = 20,
    ) -> ScheduleRecord | None:
        """Apply ``change`` with compare-and-set, re-reading on conflict.

        ``change`` returns the new record, or None to leave it as it is.
        Returns the stored record, or None if there is no such schedule.
        """
        kv = await self.kv()
        for _ in range(attempts):
            found = await self.get(schedule_id)
            if found is None:
                return None
            record, revision = found
            changed = change(record)
            if changed is None:
                return record
            try:
                await kv.update(schedule_id, record_encoder.encode(changed), last=revision)
                return changed
            except RevisionConflict:
                continue
        raise ConfigurationError(f"schedule {schedule_id!r} keeps changing; try again")

    async def delete(self, schedule_id: str, revision: int | None = None) -> bool:
        """Remove a schedule; False if it did not exist (or changed since ``revision``)."""
        kv = await self.kv()
        if revision is None:
            if await self.get(schedule_id) is None:
                return False
        try:
            if revision is None:
                await kv.purge(schedule_id)
            else:
                await kv.delete(schedule_id, last=revision)
        except JetStreamError:  # not there, or changed since ``revision``
            return False
        return True

    async def runs_job(self, job_id: str) -> bool:
        """Whether a schedule that exists runs (or ran) a job with id ``job_id``."""
        for schedule_id in schedule_ids_of_run(job_id):
            if await self.get(schedule_id) is not None:
                return True
        return False

    async def all(self) -> list[tuple[ScheduleRecord, int]]:
        """Every schedule with its revision."""
        records = []
        await self.kv()
        for entry in await self.broker.read_bucket(self.broker.names.scheduled_bucket):
            record = decode_or_none(schedule_decoder, entry.value)
            if record is not None:
                records.append((record, entry.revision))
        return records

    # -- the operations users call -----------------------------------------

    async def cancel(self, schedule_id: str) -> bool:
        """Delete a schedule; False if there is none (a job's cancellation may find its
        schedule gone: it fired meanwhile).

        Its first run, if it has not run yet, ends as cancelled, so waiters
        and listings don't keep showing it as scheduled.
        """
        if not await self.delete(schedule_id):
            return False
        await JobStore(self.broker).end(
            schedule_id, JobStatus.CANCELLED, error="schedule cancelled"
        )
        return True

    async def set_status(self, schedule_id: str, status: str) -> bool:
        """Pause or resume; False if the schedule has this status already.

        Raises:
            JobNotFoundError: no schedule has this id.
        """
        changed = False

        def change(record: ScheduleRecord) -> ScheduleRecord | None:
            nonlocal changed
            changed = record.status != status
            if not changed:
                return None
            failures = 0 if status == ScheduleStatus.ACTIVE else record.failures
            return msgspec.structs.replace(record, status=status, failures=failures)

        if await self.update(schedule_id, change) is None:
            raise schedule_not_found(schedule_id)
        return changed

    async def modify(self, schedule_id: str, **updates: Any) -> bool:
        """Change cron, interval, repeat, timezone or the next run time.

        Raises:
            JobNotFoundError: no schedule has this id.
            ConfigurationError: an unknown field or a bad value (named).
        """
        unknown = set(updates) - MODIFIABLE
        if unknown:
            raise ConfigurationError(
                f"cannot modify {', '.join(sorted(unknown))}; "
                f"supported: {', '.join(sorted(MODIFIABLE))}"
            )
        if not updates:
            raise ConfigurationError("nothing to modify: give cron, interval, repeat or next run")
        changes: dict[str, Any] = {}
        if "timezone" in updates:
            zone(updates["timezone"])
            changes["timezone"] = updates["timezone"]
        if updates.get("cron") is not None:
            changes["cron"] = validate_cron(updates["cron"], updates.get("timezone"))
            changes["interval"] = None
        if updates.get("interval") is not None:
            seconds = to_seconds(updates["interval"], "interval")
            if seconds <= 0:
                raise ConfigurationError(f"interval={updates['interval']!r} must be > 0")
            changes["interval"] = seconds
            changes["cron"] = None
        if "repeat" in updates:
            changes["repeat"] = validate_repeat(updates["repeat"])
        explicit_next = updates.get("scheduled_timestamp_utc")
        if explicit_next is not None:
            changes["next_run"] = to_timestamp(explicit_next, "scheduled_timestamp_utc")

        def change(record: ScheduleRecord) -> ScheduleRecord:
            new = msgspec.structs.replace(record, **changes)
            if explicit_next is None and (
                changes.keys() & {"cron", "interval"} or ("timezone" in changes and new.cron)
            ):
                now = time.time()
                if new.cron:
                    new = msgspec.structs.replace(
                        new, next_run=next_cron(new.cron, new.timezone, now)
                    )
                elif new.interval:
                    new = msgspec.structs.replace(new, next_run=now + new.interval)
            return new

        if await self.update(schedule_id, change) is None:
            raise schedule_not_found(schedule_id)
        return True


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as listings show it."""

    job_id: str
    queue: str
    function: str
    status: str
    next_run: float
    cron: str | None
    timezone: str | None
    interval: float | None
    next_interval: str | None
    repeat: int | None
    runs: int
    failures: int
    last_run: float | None
    last_error: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    created_at: float

    @classmethod
    def from_record(cls, record: ScheduleRecord) -> ScheduleInfo:
        """Build from a stored record."""
        return cls(
            job_id=record.schedule_id,
            queue=record.queue,
            function=record.job.fn,
            status=record.status,
            next_run=record.next_run,
            cron=record.cron,
            timezone=record.timezone,
            interval=record.interval,
            next_interval=record.next_interval,
            repeat=record.repeat,
            runs=record.runs,
            failures=record.failures,
            last_run=record.last_run,
            last_error=record.last_error,
            args=list(record.job.args),
            kwargs=dict(record.job.kwargs),
            created_at=record.created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        return dict(self.__dict__)


async def list_scheduled_jobs(
    *,
    status: str | None = None,
    queue: str | None = None,
    job_id: str | None = None,
    nats_url: str | None = None,
    settings: Settings | None = None,
) -> list[ScheduleInfo]:
    """Schedules, soonest first, optionally filtered by status, queue or id.

    Raises:
        ConfigurationError: an unknown status.
    """
    if status is not None and status not in SCHEDULE_STATUSES:
        raise ConfigurationError(
            f"unknown schedule status {status!r}; use {', '.join(SCHEDULE_STATUSES)}"
        )
    settings = (settings or get_settings()).replace(nats_url=nats_url)
    store = ScheduleStore(await Broker.connect(settings))
    infos = [
        ScheduleInfo.from_record(record)
        for record, _rev in await store.all()
        if (status is None or record.status == status)
        and (queue is None or record.queue == queue)
        and (job_id is None or record.schedule_id == job_id)
    ]
    return sorted(infos, key=lambda info: info.next_run)


list_scheduled_jobs_sync = sync_twin(list_scheduled_jobs)
