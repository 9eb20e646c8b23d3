"""Snapshots of every pane and dialog at 80x24 and 120x36 over the FakeService.

The scenes are those of ``scripts/screenshots.py`` (:mod:`naq_tui.shots`). After an
intended change of the look, refresh the baselines with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at the diff.
"""

from __future__ import annotations

from typing import Any

import pytest

from naq_tui.app import NaqApp
from naq_tui.shots import LARGE, SHOTS, SMALL, Shot

CASES = [(shot, size) for shot in SHOTS for size in (SMALL, LARGE)]


def app_for(shot: Shot) -> NaqApp:
    """A fresh app (over a fresh FakeService) for one scene."""
    return shot.app()


@pytest.mark.parametrize(
    ("shot", "size"), CASES, ids=[f"{shot.name}-{w}x{h}" for shot, (w, h) in CASES]
)
def test_snapshot(snap_compare: Any, shot: Shot, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(shot), terminal_size=size, run_before=shot.run)
