"""TUI tests: the app over the FakeService, times drawn in UTC."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from naq_tui.shots import fixed_timezone


@pytest.fixture(autouse=True, scope="package")
def _utc() -> Iterator[None]:
    # Clock times in the job detail and the reschedule dialog are local: pin the zone
    # for these tests, and give the rest of the session its zone back afterwards.
    saved = os.environ.get("TZ")
    fixed_timezone()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    if hasattr(time, "tzset"):
        time.tzset()
