"""naq's own publish frames: what arrives is what nats-py itself would have sent."""

from __future__ import annotations

import nats
import pytest

from naq.transport.frames import Framer, header_block

HEADERS: list[dict[str, str] | None] = [
    None,
    {"Nats-TTL": "86400"},
    {"Nats-TTL": "60", "Nats-Expected-Last-Subject-Sequence": "0"},
    {"Nats-Msg-Id": "job-1", "Naq-Signature": "ab12"},
]


def test_header_block_is_the_nats_header_section() -> None:
    assert header_block({"Nats-TTL": "5", "A": "b c"}) == (
        b"NATS/1.0\r\nNats-TTL: 5\r\nA: b c\r\n\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [{"Bad\r\nName": "x"}, {"Name:": "x"}, {"": "x"}, {"Name": "line\r\nbreak"}],
)
def test_a_header_that_would_break_the_frame_is_refused_by_name(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="bad"):
        header_block(headers)


async def test_lean_and_plain_publishes_deliver_the_same_messages(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        lean, plain = Framer(nc), Framer(nc)
        plain.lean = False
        assert lean.lean, "this nats-py lacks what the lean path needs"
        sub = await nc.subscribe("frames.test.>")
        for index, headers in enumerate(HEADERS):
            for framer in (lean, plain):
                scheduled = framer.send(
                    f"frames.test.{index}",
                    b"payload-%d" % index,
                    "reply.x",
                    dict(headers) if headers else None,
                )
                # The lean path queues the frame at once; the plain one schedules a publish.
                assert (scheduled is None) is (framer is lean)
                if scheduled is not None:
                    await scheduled
        # The cached encoding is reused, not rebuilt, for a header set seen before.
        assert len(lean._blocks) == 2
        seen = []
        for _ in range(2 * len(HEADERS)):
            msg = await sub.next_msg(timeout=5)
            seen.append((msg.subject, msg.reply, msg.data, msg.headers))
        for index, headers in enumerate(HEADERS):
            expected = (f"frames.test.{index}", "reply.x", b"payload-%d" % index, headers)
            assert seen[2 * index] == seen[2 * index + 1] == expected
    finally:
        await nc.close()


async def test_a_closed_client_is_refused_like_nats_py_does(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    await nc.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        Framer(nc).send("frames.closed", b"x", headers={"Nats-TTL": "5"})
