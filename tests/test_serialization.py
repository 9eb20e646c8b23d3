"""Checking a job's arguments at enqueue time: what can't travel as JSON is named."""

from __future__ import annotations

import datetime
import uuid

import pytest

from naq.errors import SerializationError
from naq.serialization import check_encodable


def test_json_types_datetimes_bytes_and_uuids_pass() -> None:
    check_encodable(
        (1, "two", [3.0], {"four": None}, datetime.datetime(2026, 1, 1), b"\x00"),
        {"when": datetime.date(2026, 1, 1), "id": uuid.uuid4()},
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ((1, object()), {}, "argument 1 of type object"),
        ((), {"ok": 1, "handle": open}, "keyword argument 'handle' of type builtin_function"),
        ((), {3: "x"}, "keyword argument name 3 must be a str"),
        ((1 + 2j,), {}, "argument 0 of type complex"),
    ],
)
def test_the_first_value_that_cant_travel_is_named(
    args: tuple[object, ...], kwargs: dict[object, object], named: str
) -> None:
    with pytest.raises(SerializationError, match=named):
        check_encodable(args, kwargs)  # type: ignore[arg-type]
