"""The pure reducer: changes in, state and dirty rows out; no Textual."""

from __future__ import annotations

from dataclasses import replace

import pytest

from naq_tui import state as state_module
from naq_tui.columns import row_key
from naq_tui.fake import NOW, FakeService, fake_id
from naq_tui.service import Connection, FailedRow, JobRow, QueueRow, Remove, Upsert
from naq_tui.state import (
    TABLES,
    State,
    counts,
    cycle_sort,
    matches,
    reduce,
    toggle_mark,
    visible,
)


def loaded() -> tuple[State, FakeService]:
    fake = FakeService()
    state = State()
    reduce(state, [Upsert(row) for row in fake.rows()])
    return state, fake


def job(n: int, status: str = "completed", ended: float | None = None) -> JobRow:
    return JobRow(
        job_id=f"job-{n:05d}",
        queue="default",
        function="m:f",
        status=status,
        ended_at=ended if ended is not None else float(n),
        updated_at=float(n),
    )


def test_upsert_adds_rows_and_marks_them_dirty() -> None:
    state = State()
    row = QueueRow("default", pending=3)
    dirty = reduce(state, [Upsert(row)])
    assert state.rows["queues"] == {"default": row}
    assert dirty.rows == {"queues": {"default"}}
    assert dirty
    assert not dirty.connection


def test_same_row_again_is_not_dirty() -> None:
    state = State()
    row = QueueRow("default", pending=3)
    reduce(state, [Upsert(row)])
    dirty = reduce(state, [Upsert(row)])
    assert not dirty
    assert dirty.rows == {}


def test_changed_row_is_dirty_once_per_batch() -> None:
    state = State()
    reduce(state, [Upsert(QueueRow("default"))])
    dirty = reduce(
        state,
        [Upsert(QueueRow("default", pending=1)), Upsert(QueueRow("default", pending=2))],
    )
    assert dirty.rows == {"queues": {"default"}}
    assert state.rows["queues"]["default"].pending == 2


def test_every_pane_gets_its_rows() -> None:
    state, fake = loaded()
    assert counts(state) == {
        "queues": 3,
        "workers": 3,
        "scheduled": 5,
        "jobs": 25,
        "failed": 4,
        "metrics": 6,
    }
    assert sum(counts(state).values()) == len(fake.rows())
    assert set(state.rows) == set(TABLES)


def test_remove_deletes_and_marks_dirty() -> None:
    state, _ = loaded()
    dirty = reduce(state, [Remove("queue", "emails")])
    assert "emails" not in state.rows["queues"]
    assert dirty.rows == {"queues": {"emails"}}


def test_remove_of_unknown_key_is_not_dirty() -> None:
    state, _ = loaded()
    assert not reduce(state, [Remove("job", "no-such-job")])


def test_upsert_then_remove_in_one_batch() -> None:
    state = State()
    dirty = reduce(state, [Upsert(QueueRow("q")), Remove("queue", "q")])
    assert state.rows["queues"] == {}
    assert dirty.rows == {"queues": {"q"}}


def test_connection_changes_are_dirty_only_when_they_change() -> None:
    state = State()
    up = Connection("connected", "nats://x:4222")
    assert reduce(state, [up]).connection
    assert state.connection == up
    assert not reduce(state, [up]).connection
    down = Connection("disconnected", "nats://x:4222", "connection refused")
    dirty = reduce(state, [down])
    assert dirty.connection and dirty.rows == {}
    assert state.connection == down


def test_last_connection_in_a_batch_wins() -> None:
    state = State()
    reduce(
        state,
        [Connection("reconnecting", "u"), Connection("connected", "u")],
    )
    assert state.connection is not None and state.connection.status == "connected"


def test_job_eviction_keeps_running_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "MAX_JOBS", 10)
    state = State()
    running = [replace(job(n, status="running"), ended_at=None) for n in range(5)]
    ended = [job(n) for n in range(5, 15)]
    dirty = reduce(state, [Upsert(r) for r in running + ended])
    jobs = state.rows["jobs"]
    assert len(jobs) == 10
    assert all(r.job_id in jobs for r in running)
    # The oldest ended jobs went first.
    assert [r.job_id for r in ended[:5]] == sorted(set(dirty.rows["jobs"]) - set(jobs))
    assert all(r.job_id in jobs for r in ended[5:])


def test_eviction_never_drops_running_even_when_all_are_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "MAX_JOBS", 3)
    state = State()
    reduce(state, [Upsert(replace(job(n, status="running"), ended_at=None)) for n in range(6)])
    assert len(state.rows["jobs"]) == 6


def test_filter_matches_any_field_case_insensitively() -> None:
    state, fake = loaded()
    state.views["jobs"].filter = "EMAIL"
    rows = visible(state, "jobs", NOW)
    assert rows
    assert len(rows) == sum(1 for j in fake.jobs.values() if "email" in j.function)
    assert all(matches(r, "email") for r in rows)
    state.views["jobs"].filter = "no-such-thing"
    assert visible(state, "jobs", NOW) == []
    state.views["jobs"].filter = ""
    assert len(visible(state, "jobs", NOW)) == 25


def test_default_sort_is_newest_job_first() -> None:
    state, _ = loaded()
    rows = visible(state, "jobs", NOW)
    updated = [r.updated_at for r in rows]
    assert updated == sorted(updated, reverse=True)


def test_sort_cycling_flips_on_the_same_column() -> None:
    state, _ = loaded()
    cycle_sort(state, "queues", "pending")
    view = state.views["queues"]
    assert (view.sort_column, view.sort_reverse) == ("pending", False)
    pending = [r.pending for r in visible(state, "queues", NOW)]
    assert pending == sorted(pending)
    cycle_sort(state, "queues", "pending")
    assert view.sort_reverse
    pending = [r.pending for r in visible(state, "queues", NOW)]
    assert pending == sorted(pending, reverse=True)
    cycle_sort(state, "queues", "name")
    assert (view.sort_column, view.sort_reverse) == ("name", False)


def test_marks_toggle_and_only_exist_for_rows() -> None:
    state, _ = loaded()
    toggle_mark(state, "#7")
    assert state.marked == {"#7"}
    toggle_mark(state, "#7")
    assert state.marked == set()
    toggle_mark(state, "not-a-dead-letter")
    assert state.marked == set()


def test_marks_are_cleared_when_the_row_goes() -> None:
    state, _ = loaded()
    key = fake_id("f1")
    toggle_mark(state, key)
    toggle_mark(state, "#7")
    reduce(state, [Remove("failed", key)])
    assert state.marked == {"#7"}


def test_row_keys() -> None:
    _, fake = loaded()
    garbage = fake.failed["#7"]
    assert isinstance(garbage, FailedRow) and garbage.job_id is None
    assert row_key(garbage) == "#7"
    assert row_key(fake.queues["default"]) == "default"
    any_job = next(iter(fake.jobs.values()))
    assert row_key(any_job) == any_job.job_id
