"""Untrusted input against real workers: what reaches a queue subject or a bucket is data, never
code, unless the deployment opted in.

* Pickles published on a queue subject are dead-lettered by a ``naq worker`` process, and the
  gadget inside them (which would create a file when unpickled) never fires.
* A pickled result planted in the results bucket is never unpickled by readers.
* A job naming a module outside ``NAQ_ALLOWED_MODULES`` is refused before import: a module whose
  import leaves a file behind is never imported by the worker process.
* With signing on, a signature with one character flipped, or cut short, is refused.
  (A flipped byte in the payload, a missing signature and another key's signature are covered in
  ``test_security_options.py``.)

Each "never happened" is paired with a control showing the same gadget does fire when it is
reached, so a passing test can't come from a gadget that was inert all along.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import shlex
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

import naq
from naq import Queue
from naq.broker import Broker
from naq.models import JobEnvelope, JobStatus, ResultRecord, envelope_encoder, record_encoder
from naq.security import SIGNATURE_HEADER, job_headers
from tests import jobs
from tests.helpers import (
    dead_letter_subscription,
    naq_cli,
    next_dead_letter,
    prefix,
    read_dead_letters,
    running_worker,
)

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "untrusted"


class _RunsShellWhenUnpickled:
    """Unpickling this runs ``touch <path>`` in a shell: the classic pickle gadget."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.path))}",))


class _TouchesWhenUnpickled:
    """Unpickling this calls ``Path.touch(path)``: no shell, still code run by ``loads``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


@pytest.fixture
def json_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default deployment: no serializer opt-in, no module allow-list, no signing."""
    for name in ("NAQ_JOB_SERIALIZER", "NAQ_ALLOWED_MODULES", "NAQ_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)


# -- pickles ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("json_only")
async def test_pickles_on_a_queue_subject_are_dead_lettered_by_a_worker_process_unopened(
    nats_url: str, tmp_path: Path
) -> None:
    """A bare pickle and a job envelope claiming the pickle serializer, published straight on the
    queue subject, are dead-lettered by ``naq worker`` with the reason; neither is unpickled
    (their gadgets never fire) and the jobs around them run."""
    raw_marker = tmp_path / "raw-unpickled"
    envelope_marker = tmp_path / "envelope-unpickled"
    raw_pickle = pickle.dumps(_RunsShellWhenUnpickled(raw_marker))
    envelope_pickle = pickle.dumps(
        (jobs.touch, [str(envelope_marker)], {"_": _TouchesWhenUnpickled(envelope_marker)})
    )
    pickled_id = "pickled-" + uuid.uuid4().hex[:8]
    envelope = envelope_encoder.encode(
        JobEnvelope(
            id=pickled_id,
            fn="tests.jobs:touch",
            queue=Q,
            enqueued_at=time.time(),
            serializer="pickle",
            pickled=envelope_pickle,
        )
    )
    async with Queue(Q) as queue:
        # Enqueued first, so the stream exists for the raw publishes; and a job after them.
        before = await queue.enqueue(jobs.add, 1, 2)
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            for data in (raw_pickle, envelope):
                await js.publish(f"{prefix()}.queue.{Q}", data)
        finally:
            await nc.close()
        after = await queue.enqueue(jobs.add, 3, 4)

    # A worker process as deployed; --burst: it exits once the queue is empty, so its exit is
    # the point where every message has been handled (dead letters are stored before the ack).
    worker = await naq_cli("worker", Q, "--burst", "--concurrency", "1")
    assert worker.code == 0, worker
    assert "Traceback" not in worker.err, worker

    assert not raw_marker.exists(), "the bare pickle was unpickled"
    assert not envelope_marker.exists(), "the pickled envelope was unpickled"
    letters = {letter.payload: letter for letter in await read_dead_letters(nats_url, Q)}
    assert set(letters) == {raw_pickle, envelope}
    raw_letter, envelope_letter = letters[raw_pickle], letters[envelope]
    assert raw_letter.job_id is None and raw_letter.queue == Q
    assert "malformed" in raw_letter.reason
    assert envelope_letter.job_id == pickled_id
    assert "pickle" in envelope_letter.reason and "refused" in envelope_letter.reason
    assert "NAQ_JOB_SERIALIZER" in envelope_letter.reason  # says how to opt in
    with pytest.raises(naq.JobExecutionError, match="pickle"):
        await naq.fetch_job_result(pickled_id)
    assert await naq.fetch_job_result(before.job_id) == 3
    assert await naq.fetch_job_result(after.job_id) == 7

    # Control: the very bytes the worker refused do run code when unpickled.
    pickle.loads(raw_pickle)  # noqa: S301
    pickle.loads(envelope_pickle)  # noqa: S301
    assert raw_marker.exists() and envelope_marker.exists()


@pytest.mark.usefixtures("json_only")
async def test_a_planted_pickled_result_is_never_unpickled_by_readers(tmp_path: Path) -> None:
    """Whoever can write the results bucket can't make ``fetch_job_result``, ``get_job`` or
    ``naq job result`` unpickle: without the pickle opt-in the ``pickled`` field is ignored."""
    marker = tmp_path / "result-unpickled"
    gadget = pickle.dumps(_TouchesWhenUnpickled(marker))
    job_id = "planted-" + uuid.uuid4().hex[:8]
    record = ResultRecord(
        job_id=job_id, status=JobStatus.COMPLETED, finished_at=time.time(), pickled=gadget
    )
    broker = await Broker.connect(naq.Settings.from_env())
    results = await broker.results_kv()
    await results.put(job_id, record_encoder.encode(record))

    assert await naq.fetch_job_result(job_id) is None
    assert (await naq.get_job(job_id)).result is None
    cli = await naq_cli("job", "result", job_id, "--json")
    assert cli.json() == {"job_id": job_id, "result": None}
    assert not marker.exists(), "a reader unpickled a planted result"

    pickle.loads(gadget)  # noqa: S301 - control: the gadget is live
    assert marker.exists()


# -- allowed modules ------------------------------------------------------------------------------


def _write_module(directory: Path, name: str, marker: Path) -> str:
    """Write module ``name`` whose import creates ``marker``; its ``run()`` returns ``name``."""
    (directory / f"{name}.py").write_text(
        '"""Leaves a file behind when imported (test_untrusted_payloads)."""\n'
        "from pathlib import Path\n\n"
        f"Path({str(marker)!r}).write_text('imported')\n\n\n"
        "def run() -> str:\n"
        f"    return {name!r}\n"
    )
    return name


@pytest.mark.usefixtures("json_only")
async def test_module_outside_allowed_modules_is_never_imported_by_a_worker_process(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``naq worker`` with ``NAQ_ALLOWED_MODULES`` refuses a job whose module is outside the list
    before importing it: its import-time side effect never happens, the dead letter and the job's
    outcome name the module, and the worker goes on with allowed jobs."""
    modules = tmp_path / "modules"
    modules.mkdir()
    tag = uuid.uuid4().hex[:8]
    refused_marker = tmp_path / "refused-imported"
    allowed_marker = tmp_path / "allowed-imported"
    refused_module = _write_module(modules, f"naq_refused_{tag}", refused_marker)
    # Control: the same kind of module on a second queue, whose worker does allow it.
    allowed_module = _write_module(modules, f"naq_allowed_{tag}", allowed_marker)
    # Both modules are importable by the worker processes: only the allow-list stands between
    # a job and the import.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("NAQ_ALLOWED_MODULES", "tests.jobs")
    control_queue = Q + "-control"

    async with Queue(Q) as queue, Queue(control_queue) as control:
        # Enqueued by path: the producer doesn't import the module either.
        refused = await queue.enqueue(f"{refused_module}:run")
        allowed = await queue.enqueue(jobs.add, 1, 2)
        imported = await control.enqueue(f"{allowed_module}:run")

        workers = await asyncio.gather(
            naq_cli("worker", Q, "--burst"),
            naq_cli(
                "worker",
                control_queue,
                "--burst",
                "--allowed-modules",
                f"tests.jobs,{allowed_module}",
            ),
        )
    for worker in workers:
        assert worker.code == 0, worker
        assert "Traceback" not in worker.err, worker

    assert not refused_marker.exists(), f"the worker imported {refused_module}"
    assert allowed_marker.exists(), "control: an allowed module's import is seen"
    assert await naq.fetch_job_result(imported.job_id) == allowed_module
    assert await naq.fetch_job_result(allowed.job_id) == 3
    with pytest.raises(naq.JobExecutionError) as caught:
        await naq.fetch_job_result(refused.job_id)
    assert refused_module in (caught.value.error or "")
    letters = await read_dead_letters(nats_url, Q)
    assert [letter.job_id for letter in letters] == [refused.job_id]
    reason = letters[0].reason
    assert refused_module in reason and "allowed_modules" in reason and "refused" in reason
    assert await read_dead_letters(nats_url, control_queue) == []


# -- signatures -----------------------------------------------------------------------------------


def _flip(hex_text: str, index: int) -> str:
    """``hex_text`` with the hex digit at ``index`` changed (to another valid digit)."""
    digit = hex_text[index]
    return hex_text[:index] + ("0" if digit != "0" else "1") + hex_text[index + 1 :]


async def test_a_flipped_or_shortened_signature_is_refused(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With signing on, an untouched payload whose signature has one digit flipped (first or
    last), or has lost its last digit, is dead-lettered as forged and never runs."""
    key = "sign-key-" + uuid.uuid4().hex[:6]
    monkeypatch.setenv("NAQ_SIGNING_KEY", key)
    signed = naq.Settings.from_env()
    subject = f"{prefix()}.queue.{Q}"
    cases: dict[str, Callable[[str], str]] = {
        "first digit flipped": lambda sig: _flip(sig, 0),
        "last digit flipped": lambda sig: _flip(sig, len(sig) - 1),
        "last digit missing": lambda sig: sig[:-1],
    }
    sent: dict[bytes, tuple[str, Path]] = {}
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with (
            Queue(Q, settings=signed) as queue,
            running_worker(Q, settings=signed, concurrency=1) as worker,
            dead_letter_subscription(nats_url, Q) as sub,
        ):
            for index, (case, alter) in enumerate(cases.items()):
                marker = tmp_path / f"ran-{index}"
                job = naq.Job(jobs.touch, [str(marker)], queue_name=Q, settings=signed)
                payload = job.serialize()
                headers = job_headers(signed, job.job_id, payload)
                assert len(headers[SIGNATURE_HEADER]) == 64  # hex SHA-256
                headers[SIGNATURE_HEADER] = alter(headers[SIGNATURE_HEADER])
                await js.publish(subject, payload, headers=headers)
                sent[payload] = (case, marker)
            letters = [await next_dead_letter(sub) for _ in cases]
            # Control, on the same worker: the signature made by naq itself is accepted.
            ok_marker = tmp_path / "ran-signed"
            ok = await queue.enqueue(jobs.touch, str(ok_marker))
            assert await ok.result(timeout=10) == str(ok_marker)
            assert worker.failed == len(cases)
    finally:
        await nc.close()
    assert ok_marker.exists()
    assert {letter.payload for letter in letters} == set(sent)
    for letter in letters:
        case, marker = sent[letter.payload]
        assert "forged" in letter.reason, (case, letter.reason)
        assert not marker.exists(), f"{case}: the job ran"
