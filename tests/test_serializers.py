"""The serializer interface of ``naq.job``: each one writes and reads what naq itself stores
— the job message, the dead letter of the failed stream, the result record of the results bucket —
and ``get_serializer`` follows ``NAQ_JOB_SERIALIZER``."""

from __future__ import annotations

import datetime

import msgspec
import pytest

import naq
from naq.broker import Broker
from naq.job import (
    Job,
    JsonSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
)
from naq.models import JobStatus, dead_letter_decoder
from naq.results import decode_result, result_value
from naq.settings import SERIALIZERS
from tests import jobs
from tests.helpers import running_worker

pytestmark = pytest.mark.filterwarnings("ignore:naq is using the pickle serializer")

Q = "serializers"
JSON = naq.Settings()
PICKLE = naq.Settings(job_serializer="pickle")


@pytest.fixture(autouse=True)
def default_serializer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NAQ_JOB_SERIALIZER", "NAQ_RESULT_ENCRYPTION_KEY", "NAQ_ALLOWED_MODULES"):
        monkeypatch.delenv(name, raising=False)


# -- jobs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", [JsonSerializer, PickleSerializer])
def test_a_job_round_trips(serializer: Serializer) -> None:
    settings = PICKLE if serializer is PickleSerializer else JSON
    job = Job(jobs.add, [1, 2], {}, queue_name=Q, max_retries=2, timeout=5, settings=settings)
    back = serializer.deserialize_job(serializer.serialize_job(job))
    assert (back.job_id, back.queue_name, back.args, back.kwargs) == (job.job_id, Q, (1, 2), {})
    assert (back.max_retries, back.timeout, back.function_ref) == (2, 5.0, "tests.jobs:add")
    # The same bytes as the job's own serialize() with that serializer.
    assert serializer.serialize_job(job) == job.serialize()


def test_pickle_carries_a_lambda_and_json_refuses_it() -> None:
    job = Job(lambda x: x * 2, [21], queue_name=Q, settings=PICKLE)
    back = PickleSerializer.deserialize_job(PickleSerializer.serialize_job(job))
    assert back.function(*back.args) == 42
    with pytest.raises(naq.SerializationError, match="lambda"):
        JsonSerializer.serialize_job(job)
    with pytest.raises(naq.SerializationError, match="NAQ_JOB_SERIALIZER=pickle"):
        JsonSerializer.deserialize_job(PickleSerializer.serialize_job(job))


def test_a_job_made_for_pickle_is_sent_as_json_when_json_can_carry_it() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    job = Job(jobs.when, [when], queue_name=Q, settings=PICKLE)
    back = JsonSerializer.deserialize_job(JsonSerializer.serialize_job(job))
    assert back.function == "tests.jobs:when" and back.args == (when.isoformat(),)
    with pytest.raises(naq.SerializationError, match="argument 0 of type object"):
        JsonSerializer.serialize_job(Job(jobs.echo_kwargs, [object()], settings=PICKLE))


@pytest.mark.parametrize("serializer", [JsonSerializer, PickleSerializer])
def test_a_failed_job_is_a_dead_letter_of_the_failed_stream(serializer: Serializer) -> None:
    settings = PICKLE if serializer is PickleSerializer else JSON
    job = Job(jobs.fail, ["boom"], queue_name=Q, settings=settings)
    job.error, job.traceback = "ValueError: boom", "Traceback ...\nValueError: boom\n"
    letter = dead_letter_decoder.decode(serializer.serialize_failed_job(job))
    assert (letter.job_id, letter.queue, letter.function) == (job.job_id, Q, "tests.jobs:fail")
    assert (letter.error, letter.traceback) == (job.error, job.traceback)
    assert Job.deserialize(letter.payload, settings).args == ("boom",)
    # The job's own method is its serializer's (only failed_at, the moment, differs).
    made = dead_letter_decoder.decode(job.serialize_failed_job())
    assert msgspec.structs.replace(made, failed_at=0) == msgspec.structs.replace(
        letter, failed_at=0
    )


# -- results --------------------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", [JsonSerializer, PickleSerializer])
def test_a_result_round_trips_through_naqs_result_record(serializer: Serializer) -> None:
    value = {"total": 3, "items": [1, 2]}
    data = serializer.serialize_result(value, JobStatus.COMPLETED)
    assert serializer.deserialize_result(data) == {
        "status": "completed",
        "result": value,
        "error": None,
        "traceback": None,
    }
    settings = PICKLE if serializer is PickleSerializer else JSON
    record = decode_result(settings, data)
    assert record is not None and result_value(record, settings) == value


def test_pickle_keeps_any_value_and_json_names_what_it_cant_store() -> None:
    value = 1 + 2j
    data = PickleSerializer.serialize_result(value, "completed")
    assert PickleSerializer.deserialize_result(data)["result"] == value
    with pytest.raises(naq.SerializationError, match="type complex"):
        JsonSerializer.serialize_result(value, "completed")
    with pytest.raises(naq.SerializationError, match="'done' is not an outcome"):
        JsonSerializer.serialize_result(1, "done")
    with pytest.raises(naq.SerializationError, match="not a naq result record"):
        JsonSerializer.deserialize_result(b"[1, 2]")


def test_a_sealed_result_is_read_back_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAQ_RESULT_ENCRYPTION_KEY", "a secret for results")
    data = Job.serialize_result(None, "failed", "ValueError: no", "Traceback ...", job_id="j1")
    assert b"ValueError" not in data  # sealed at rest
    assert Job.deserialize_result(data) == {
        "status": "failed",
        "result": None,
        "error": "ValueError: no",
        "traceback": "Traceback ...",
    }


# -- choosing --------------------------------------------------------------------------------------


def test_get_serializer_follows_naq_job_serializer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_serializer() is JsonSerializer
    monkeypatch.setenv("NAQ_JOB_SERIALIZER", "pickle")
    assert get_serializer() is PickleSerializer
    assert get_serializer("json") is JsonSerializer
    assert {get_serializer(name).name for name in SERIALIZERS} == set(SERIALIZERS)
    with pytest.raises(naq.SerializationError, match="'yaml'"):
        get_serializer("yaml")
    monkeypatch.setenv("NAQ_JOB_SERIALIZER", "yaml")
    with pytest.raises(naq.SerializationError, match="'yaml'"):
        get_serializer()


# -- against a worker ------------------------------------------------------------------------------


@pytest.mark.usefixtures("nats_url")
async def test_what_a_worker_stores_is_read_and_what_serializers_write_naq_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Job.deserialize_result`` reads the results a worker stored (a value, a failure);
    ``naq.fetch_job_result`` reads a result written with ``Job.serialize_result``; a dead
    letter made by ``serialize_failed_job`` is listed and requeued by naq."""
    monkeypatch.setenv("NAQ_JOB_SERIALIZER", "pickle")
    settings = naq.Settings.from_env()
    broker = await Broker.connect(settings)
    results = await broker.results_kv()
    async with naq.Queue(Q) as queue, running_worker(Q, settings=settings):
        done = await queue.enqueue(jobs.add, 1, 2)
        failed = await queue.enqueue(jobs.fail, "broken")
        assert await done.result(timeout=10) == 3
        await failed.wait(timeout=10)
        stored_done, stored_failed = [await results.get(job.job_id) for job in (done, failed)]
        assert stored_done is not None and stored_failed is not None
        assert Job.deserialize_result(stored_done.value)["result"] == 3
        outcome = Job.deserialize_result(stored_failed.value)
        assert (outcome["status"], outcome["error"]) == ("failed", "ValueError: broken")
        assert outcome["traceback"].endswith("ValueError: broken\n")

        await results.put("written", Job.serialize_result([1, 2], "completed", job_id="written"))
        assert await naq.fetch_job_result("written") == [1, 2]

        lost = Job(jobs.add, [4, 5], queue_name=Q, settings=settings)
        lost.error = "RuntimeError: lost"
        await broker.ensure_failed_stream()
        await broker.connection.publish(broker.names.failed_subject(Q), lost.serialize_failed_job())
        (listed,) = [f for f in await naq.list_failed_jobs(Q) if f.job_id == lost.job_id]
        assert (listed.error, listed.function) == ("RuntimeError: lost", "tests.jobs:add")
        assert await naq.requeue_failed_job(lost.job_id)
        assert await naq.wait_for_job(lost.job_id, timeout=10)
        assert await naq.fetch_job_result(lost.job_id) == 9
