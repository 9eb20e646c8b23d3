"""Result encryption (``result_encryption_key`` / NAQ_RESULT_ENCRYPTION_KEY) and job signing
(``signing_key`` / NAQ_SIGNING_KEY) against a real nats-server: what is stored, what is refused."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

import msgspec
import nats
import pytest

import naq
from naq import JobStatus, Queue
from naq.models import result_decoder
from naq.security import SIGNATURE_HEADER, job_headers
from tests import jobs
from tests.helpers import dead_letter_subscription, next_dead_letter, prefix, running_worker

pytestmark = pytest.mark.usefixtures("nats_url")

Q = "secure"


def settings(**keys: str) -> naq.Settings:
    """This test's settings (prefix, server) with ``keys`` set in code."""
    return naq.Settings.from_env().replace(**keys)


async def raw_stream(nats_url: str, stream: str) -> list[nats.js.api.RawStreamMsg]:
    """Every message of ``stream``, read with plain nats-py."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                found.append(await js.get_msg(stream, seq))
            except nats.js.errors.NotFoundError:
                continue  # deleted or replaced
        return found
    finally:
        await nc.close()


# -- result encryption ------------------------------------------------------------------


async def test_encrypted_result_round_trips_and_is_never_stored_in_plaintext(
    nats_url: str,
) -> None:
    secret = "plaintext-" + uuid.uuid4().hex  # the job returns it; no argument holds it whole
    error_text = "secret-error-" + uuid.uuid4().hex
    keyed = settings(result_encryption_key="result-key-1")
    async with Queue(Q, settings=keyed) as queue, running_worker(Q, settings=keyed):
        job = await queue.enqueue(jobs.add, secret[:15], secret[15:])
        assert await job.result(timeout=10) == secret
        failing = await queue.enqueue(jobs.fail, error_text)
        with pytest.raises(naq.JobExecutionError) as caught:
            await failing.result(timeout=10)
    assert error_text in (caught.value.error or "")
    assert await naq.fetch_job_result(job.job_id, settings=keyed) == secret
    assert (await naq.get_job(job.job_id, settings=keyed)).result == secret

    stored = await raw_stream(nats_url, f"KV_{prefix()}_results")
    assert {msg.subject for msg in stored} == {
        f"$KV.{prefix()}_results.{job.job_id}",
        f"$KV.{prefix()}_results.{failing.job_id}",
    }
    for msg in stored:
        assert secret.encode() not in (msg.data or b"")
        assert error_text.encode() not in (msg.data or b"")
        record = result_decoder.decode(msg.data or b"")
        assert record.sealed, "the outcome should be sealed"
        assert (record.result, record.error, record.traceback) == (None, None, None)
    # Status and timings stay readable without the key.
    by_id = {result_decoder.decode(m.data or b"").job_id: m for m in stored}
    completed = result_decoder.decode(by_id[job.job_id].data or b"")
    assert completed.status == JobStatus.COMPLETED and completed.finished_at > 0


async def test_reader_without_the_key_gets_a_clear_security_error() -> None:
    keyed = settings(result_encryption_key="result-key-2")
    async with Queue(Q, settings=keyed) as queue, running_worker(Q, settings=keyed):
        job = await queue.enqueue(jobs.add, "x", "y")
        assert await job.result(timeout=10) == "xy"
    # The environment has no key: the module helpers use it.
    with pytest.raises(naq.SecurityError, match="encrypted.*NAQ_RESULT_ENCRYPTION_KEY"):
        await naq.fetch_job_result(job.job_id)
    with pytest.raises(naq.SecurityError, match="can't be decrypted"):
        await naq.fetch_job_result(
            job.job_id, settings=settings(result_encryption_key="not-the-key")
        )
    with pytest.raises(naq.SecurityError):
        await naq.Job(jobs.add, ("x", "y"), job_id=job.job_id, queue_name=Q).result(timeout=5)


async def test_status_of_an_encrypted_job_is_readable_without_the_key() -> None:
    # security.py: "status and timings stay readable"; only the value is sealed.
    keyed = settings(result_encryption_key="result-key-3")
    async with Queue(Q, settings=keyed) as queue, running_worker(Q, settings=keyed):
        job = await queue.enqueue(jobs.add, "p", "q")
        assert await job.result(timeout=10) == "pq"
    info = await naq.get_job(job.job_id)  # no key in this process's settings
    assert info.status == JobStatus.COMPLETED
    assert info.ended_at is not None
    assert info.result != "pq"


# -- signing --------------------------------------------------------------------------------


async def test_signed_jobs_carry_a_signature_and_run(nats_url: str) -> None:
    signed = settings(signing_key="sign-key-1")
    async with Queue(Q, settings=signed) as queue:
        await queue.pause()
        job = await queue.enqueue(jobs.add, 2, 3)
        nc = await nats.connect(nats_url)
        try:
            msg = await nc.jetstream().get_last_msg(f"{prefix()}_jobs", f"{prefix()}.queue.{Q}")
        finally:
            await nc.close()
        expected = hmac.new(b"sign-key-1", msg.data or b"", hashlib.sha256).hexdigest()
        assert (msg.headers or {}).get(SIGNATURE_HEADER) == expected
        async with running_worker(Q, settings=signed):
            await queue.resume()
            assert await job.result(timeout=10) == 5


async def test_unsigned_and_tampered_jobs_are_dead_lettered_and_never_run(
    nats_url: str, tmp_path: Path
) -> None:
    signed = settings(signing_key="sign-key-2")
    unsigned_marker = tmp_path / "unsigned"
    unsigned = naq.Job(jobs.touch, [str(unsigned_marker)], queue_name=Q, settings=signed)
    unsigned_payload = unsigned.serialize()
    original = naq.Job(jobs.touch, [str(tmp_path / "forged-a")], queue_name=Q, settings=signed)
    original_payload = original.serialize()
    headers = job_headers(signed, original.job_id, original_payload)
    tampered_payload = original_payload.replace(b"forged-a", b"forged-b")  # one byte flipped
    assert len(tampered_payload) == len(original_payload) != 0
    assert tampered_payload != original_payload
    subject = f"{prefix()}.queue.{Q}"
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with (
            Queue(Q, settings=signed) as queue,
            running_worker(Q, settings=signed, concurrency=1) as worker,
            dead_letter_subscription(nats_url, Q) as sub,
        ):
            await js.publish(subject, unsigned_payload, headers={"Nats-Msg-Id": unsigned.job_id})
            await js.publish(subject, tampered_payload, headers=headers)
            letters = [await next_dead_letter(sub) for _ in range(2)]
            # The worker goes on with signed jobs.
            ok = await queue.enqueue(jobs.add, 1, 1)
            assert await ok.result(timeout=10) == 2
            assert worker.failed == 2
    finally:
        await nc.close()
    by_payload = {letter.payload: letter for letter in letters}
    assert set(by_payload) == {unsigned_payload, tampered_payload}
    assert "unsigned" in by_payload[unsigned_payload].reason
    assert "forged" in by_payload[tampered_payload].reason
    assert not unsigned_marker.exists()
    assert not (tmp_path / "forged-a").exists() and not (tmp_path / "forged-b").exists()


async def test_producer_with_another_key_or_none_is_refused(nats_url: str, tmp_path: Path) -> None:
    worker_settings = settings(signing_key="worker-key")
    async with (
        running_worker(Q, settings=worker_settings, concurrency=1),
        dead_letter_subscription(nats_url, Q) as sub,
    ):
        other_key = await Queue(Q, settings=settings(signing_key="another-key")).enqueue(
            jobs.touch, str(tmp_path / "other-key")
        )
        other_letter = await next_dead_letter(sub)
        no_key = await Queue(Q, settings=settings()).enqueue(jobs.touch, str(tmp_path / "no-key"))
        no_key_letter = await next_dead_letter(sub)
        good = await Queue(Q, settings=worker_settings).enqueue(jobs.touch, str(tmp_path / "ok"))
        assert await good.result(timeout=10) == str(tmp_path / "ok")
    assert "forged" in other_letter.reason
    assert "unsigned" in no_key_letter.reason
    # The refused message is kept whole (it can be inspected), but nothing ran.
    assert msgspec.json.decode(other_letter.payload)["id"] == other_key.job_id
    assert msgspec.json.decode(no_key_letter.payload)["id"] == no_key.job_id
    assert not (tmp_path / "other-key").exists()
    assert not (tmp_path / "no-key").exists()
    for job in (other_key, no_key):
        assert (await naq.get_job(job.job_id)).status != JobStatus.COMPLETED
