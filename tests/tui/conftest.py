"""TUI tests: the app over the FakeService, times drawn in UTC."""

from __future__ import annotations

import pytest

from naq_tui.shots import fixed_timezone


@pytest.fixture(autouse=True, scope="session")
def _utc() -> None:
    # Clock times in the job detail and the reschedule dialog are local: pin the zone.
    fixed_timezone()
