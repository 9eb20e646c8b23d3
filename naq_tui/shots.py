"""Named, deterministic scenes of the app over the :class:`FakeService`.

``scripts/screenshots.py`` saves each as an SVG in ``screenshots/`` and
``tests/tui/test_snapshots.py`` compares each against its baseline, so the
pictures in the README and the snapshot tests show the same thing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from naq_tui.app import NaqApp
from naq_tui.fake import FakeService, fake_id
from naq_tui.screens.job_detail import JobDetailScreen

SMALL = (80, 24)
LARGE = (120, 36)


def fixed_timezone() -> None:
    """Draw clock times in UTC, so the pictures don't depend on where they were made."""
    os.environ["TZ"] = "UTC"
    if hasattr(time, "tzset"):
        time.tzset()


def make_app(readonly: bool = False, connection: str = "connected") -> NaqApp:
    """A NaqApp over a fresh FakeService, without animations (pictures must not move)."""
    app = NaqApp(FakeService(connection_status=connection), readonly=readonly)
    app.animation_level = "none"
    return app


async def settle(pilot: Pilot[Any], timeout: float = 5.0) -> None:
    """Wait until the app has drawn every row the fake service sends at first."""
    app = pilot.app
    assert isinstance(app, NaqApp)
    service = app.service
    assert isinstance(service, FakeService)
    expected = len(service.rows())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        loaded = sum(len(rows) for rows in app.state.rows.values())
        charted = service.series is None or app.state.series is not None
        if app.state.connection is not None and loaded >= expected and charted:
            break
        await pilot.pause(0.02)
    await pilot.pause()


async def still_cursor(pilot: Pilot[Any]) -> None:
    """Stop every input's cursor blinking, so a picture doesn't depend on timing."""
    for input_widget in pilot.app.screen.query(Input):
        input_widget.cursor_blink = False
    await pilot.pause()


def _select(pane: str, key: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, NaqApp)
        app.tables[pane].select_key(key)
        await pilot.pause()

    return run


def _detail_shown(pilot: Pilot[Any]) -> Awaitable[None]:
    # The detail is fetched by a worker, then pushed: wait for it rather than guess.
    return _until(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen))


async def _until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await pilot.pause(0.02)


def _detail(key: str) -> tuple[str | Callable[[Pilot[Any]], Awaitable[None]], ...]:
    return ("4", _select("jobs", key), "enter", _detail_shown)


@dataclass(frozen=True)
class Shot:
    """A scene: key presses (and steps) on a fresh app, at one or more sizes."""

    name: str
    steps: tuple[str | Callable[[Pilot[Any]], Awaitable[None]], ...] = ()
    sizes: tuple[tuple[int, int], ...] = (SMALL, LARGE)
    readonly: bool = False
    connection: str = "connected"

    def app(self) -> NaqApp:
        """A fresh app for this scene."""
        return make_app(readonly=self.readonly, connection=self.connection)

    async def run(self, pilot: Pilot[Any]) -> None:
        """Bring the app to this scene."""
        await settle(pilot)
        for step in self.steps:
            if isinstance(step, str):
                await pilot.press(step)
            else:
                await step(pilot)
        await pilot.wait_for_scheduled_animations()
        await still_cursor(pilot)


SHOTS: tuple[Shot, ...] = (
    Shot("overview"),
    Shot("metrics", ("6",)),
    Shot("queues", ("1",)),
    Shot("workers", ("2",)),
    Shot("scheduled", ("3",)),
    Shot("jobs", ("4",)),
    Shot("failed", ("5",)),
    Shot("failed-marked", ("5", "space", "space")),
    Shot("filter", ("4", "slash", *"email")),
    Shot("sorted", ("1", "s", "S")),
    Shot("job-detail-failed", _detail(fake_id("f1"))),
    Shot("job-detail-completed", _detail(fake_id("c1"))),
    Shot("job-detail-running", _detail(fake_id("r1"))),
    Shot("job-detail-retried", _detail(fake_id("c2"))),
    Shot("reschedule", ("3", "e")),
    Shot("reschedule-invalid", ("3", "e", *"61 * * *")),
    Shot(
        "limits-invalid",
        ("1", _select("queues", "emails"), "l", "tab", *"20/x"),
        sizes=(LARGE,),
    ),
    Shot("confirm-purge", ("1", "d")),
    Shot("confirm-cancel", ("4", _select("jobs", fake_id("p1")), "c")),
    Shot("help", ("question_mark",)),
    Shot("palette", ("colon",), sizes=(LARGE,)),
    Shot("readonly", ("3",), readonly=True),
    Shot("reconnecting", ("4",), connection="reconnecting", sizes=(SMALL,)),
    Shot("disconnected", ("1",), connection="disconnected", sizes=(SMALL,)),
)

SHOTS_BY_NAME = {shot.name: shot for shot in SHOTS}
