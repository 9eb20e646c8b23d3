"""Ids given by their start: a job, schedule, dead letter or worker named by a unique prefix
of its id or name, the way git takes a short commit id and docker a short container id.

The exact id always wins: a prefix is looked for only when nothing has the given id, and
only when it is at least :data:`MIN_PREFIX` characters long. Each resolver returns the full
id of the one match, or the text as given when nothing matches, so that the operation then
refuses it with its own not-found error, naming what was typed.

Raises:
    AmbiguousIdError: (from every resolver) the prefix starts several ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from naq.broker import Broker
from naq.dead_letters import list_failed_jobs
from naq.errors import AmbiguousIdError
from naq.monitor import list_workers
from naq.names import JOB_ID_RE
from naq.results import resolve_settings
from naq.schedules import ScheduleStore
from naq.settings import Settings

#: The shortest prefix looked up: shorter ones would match too much to be useful.
MIN_PREFIX = 4
#: How many candidates an ambiguity error lists.
SHOWN_CANDIDATES = 6


def unique_match(kind: str, text: str, candidates: Iterable[str]) -> str:
    """The one candidate ``text`` is a prefix of; ``text`` itself when none is (or when it
    is shorter than :data:`MIN_PREFIX`).

    ``kind`` names what the candidates are, in the plural ("jobs", "workers").

    Raises:
        AmbiguousIdError: ``text`` starts several candidates.
    """
    if len(text) < MIN_PREFIX:
        return text
    matches = sorted({candidate for candidate in candidates if candidate.startswith(text)})
    if not matches:
        return text
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(matches[:SHOWN_CANDIDATES])
    more = len(matches) - SHOWN_CANDIDATES
    if more > 0:
        shown += f" and {more} more"
    raise AmbiguousIdError(f"{text!r} is the start of {len(matches)} {kind}: {shown}")


async def _bucket_keys(broker: Broker, bucket: str) -> list[str]:
    """Every key with a message in ``bucket`` (read as the subjects of its stream)."""
    prefix = broker.kv_subject(bucket, "")
    counts = await broker.subject_counts(f"KV_{bucket}", prefix + ">")
    return [subject[len(prefix) :] for subject in counts]


async def resolve_job_id(
    text: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> str:
    """The id of the job ``text`` names: itself when naq knows a job by that id, else the
    one job (with a status or a result) whose id starts with it."""
    if not JOB_ID_RE.match(text):
        return text  # the operation refuses it as an invalid id
    broker = await Broker.connect(resolve_settings(nats_url, settings))
    status, results = await broker.status_kv(), await broker.results_kv()
    if await status.get(text) is not None or await results.get(text) is not None:
        return text
    if await ScheduleStore(broker).runs_job(text):
        return text  # a schedule's run not enqueued yet: a prefix of later runs' ids
    if len(text) < MIN_PREFIX:
        return text
    names = broker.names
    keys = await _bucket_keys(broker, names.status_bucket)
    keys += await _bucket_keys(broker, names.results_bucket)
    return unique_match("jobs", text, keys)


async def resolve_schedule_id(
    text: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> str:
    """The id of the schedule ``text`` names: itself when a schedule has that id, else the
    one schedule whose id starts with it."""
    if not JOB_ID_RE.match(text):
        return text
    store = ScheduleStore(await Broker.connect(resolve_settings(nats_url, settings)))
    if len(text) < MIN_PREFIX or await store.get(text) is not None:
        return text
    return unique_match("schedules", text, (record.schedule_id for record, _ in await store.all()))


async def resolve_failed_job_id(
    text: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> str:
    """The job id of the dead letter ``text`` names: itself when a dead letter has that job
    id, else the one dead letter whose job id starts with it."""
    if len(text) < MIN_PREFIX:
        return text
    letters = await list_failed_jobs(settings=resolve_settings(nats_url, settings))
    ids = {letter.job_id for letter in letters if letter.job_id}
    return text if text in ids else unique_match("failed jobs", text, ids)


async def resolve_worker_name(
    text: str, *, nats_url: str | None = None, settings: Settings | None = None
) -> str:
    """The name of the worker ``text`` names: itself when a live worker has that name (or
    when no live worker's name starts with it), else the one whose name starts with it."""
    if len(text) < MIN_PREFIX:
        return text
    workers = await list_workers(settings=resolve_settings(nats_url, settings))
    names = {worker.name for worker in workers}
    return text if text in names else unique_match("workers", text, names)
