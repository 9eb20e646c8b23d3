"""The actions of the main screen: what each key that does something runs.

Every action runs its service call in a worker and reports the outcome (or the error,
in one line) as a notification; the service's change stream then brings the result to
the rows. :class:`~naq_tui.app.NaqApp` builds on this class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual import work
from textual.app import App

from naq.limits import QueueLimits
from naq_tui.columns import short_function
from naq_tui.screens.confirm import ConfirmScreen
from naq_tui.screens.help import HelpScreen
from naq_tui.screens.job_detail import JobDetailScreen
from naq_tui.screens.limits import LimitsScreen
from naq_tui.screens.reschedule import Reschedule, RescheduleScreen
from naq_tui.service import FailedRow, Service
from naq_tui.state import TITLES, State, toggle_mark
from naq_tui.widgets.pane_table import PaneTable

T = TypeVar("T")


def error_text(exc: BaseException) -> str:
    """An exception as one line for a notification (never a traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


class PaneActions(App[None]):
    """The actions on the selected row (or the marked ones) of the pane on show."""

    service: Service
    state: State
    readonly: bool
    tables: dict[str, PaneTable]
    #: The pane on show.
    pane: str

    def _redraw(self, pane: str, key: str | None = None) -> None:
        """Redraw a pane after a view change, or one row (the app's own)."""
        raise NotImplementedError

    def _selected(self) -> Any | None:
        pane = self.pane
        key = self.tables[pane].selected_key
        row = self.state.rows[pane].get(key) if key is not None else None
        if row is None:
            self.notify(f"no {TITLES[pane].lower()} row selected", severity="warning")
        return row

    def _act(
        self,
        title: str,
        call: Callable[[], Awaitable[T]],
        done: Callable[[T], str | None] | None = None,
    ) -> None:
        """Run a service call in a worker; report its outcome, or its error in one line."""

        async def run() -> None:
            try:
                result = await call()
            except Exception as exc:
                self.notify(error_text(exc), title=f"{title} failed", severity="error")
                return
            message = done(result) if done else None
            if message:
                self.notify(message, title=title)

        self.run_worker(run(), group="actions", exit_on_error=False)

    def _confirm(self, question: str, then: Callable[[], None], title: str = "Confirm") -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.push_screen(ConfirmScreen(question, title=title), answered)

    # -- actions ----------------------------------------------------------------

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen(readonly=self.readonly))

    def action_open_detail(self) -> None:
        """Open the selected job's detail (Jobs, Failed, Scheduled)."""
        row = self._selected()
        if row is None:
            return
        job_id = row.job_id
        if job_id is None:
            self.notify(
                "this dead letter has no job id (it could not be decoded)", severity="warning"
            )
            return
        self._show_detail(job_id)

    @work(exclusive=True, group="detail")
    async def _show_detail(self, job_id: str) -> None:
        try:
            detail = await self.service.job_detail(job_id)
        except Exception as exc:
            self.notify(error_text(exc), title="Job detail", severity="error")
            return
        await self.push_screen(JobDetailScreen(detail, self.service.now()))

    def action_pause(self) -> None:
        """Pause the selected schedule or queue."""
        self._pause_or_resume(pause=True)

    def action_resume(self) -> None:
        """Resume the selected schedule or queue."""
        self._pause_or_resume(pause=False)

    def _pause_or_resume(self, pause: bool) -> None:
        row = self._selected()
        if row is None:
            return
        verb = "paused" if pause else "resumed"
        if self.pane == "queues":
            name = row.name
            method = self.service.pause_queue if pause else self.service.resume_queue
            self._act(f"Queue {name}", lambda: method(name), lambda _: f"queue {name} {verb}")
        else:
            job_id, what = row.job_id, short_function(row.function)
            call = self.service.pause_schedule if pause else self.service.resume_schedule
            state = "paused" if pause else "active"
            self._act(
                "Schedule",
                lambda: call(job_id),
                lambda ok: f"{what} {verb}" if ok else f"{what} was {state} already",
            )

    def action_reschedule(self) -> None:
        """Open the reschedule dialog for the selected schedule."""
        row = self._selected()
        if row is None:
            return
        job_id, what = row.job_id, short_function(row.function)

        def chosen(request: Reschedule | None) -> None:
            if request is None:
                return
            self._act(
                "Reschedule",
                lambda: self.service.reschedule(
                    job_id,
                    cron=request.cron,
                    interval=request.interval,
                    next_run=request.next_run,
                ),
                lambda _: f"{what} rescheduled",
            )

        self.push_screen(RescheduleScreen(row), chosen)

    def action_limits(self) -> None:
        """Open the limits dialog for the selected queue."""
        row = self._selected()
        if row is None:
            return
        name = row.name

        def chosen(limits: QueueLimits | None) -> None:
            if limits is None:
                return
            self._act(
                "Queue limits",
                lambda: self.service.set_limits(name, limits.concurrency, limits.rate),
                lambda now: f"queue {name}: {now.describe() or 'no limits'}",
            )

        self.push_screen(LimitsScreen(row), chosen)

    def action_cancel(self) -> None:
        """Cancel the selected job, or delete the selected schedule (after asking)."""
        row = self._selected()
        if row is None:
            return
        job_id, what = row.job_id, short_function(row.function)
        if self.pane == "jobs":
            self._confirm(
                f"Cancel job {job_id}\n{what} ({row.status})?",
                lambda: self._act(
                    "Cancel job",
                    lambda: self.service.cancel_job(job_id),
                    lambda ok: (
                        f"job {job_id[:12]} cancelled" if ok else "the job had already ended"
                    ),
                ),
                title="Cancel job",
            )
        else:
            self._confirm(
                f"Delete the schedule of {what}\n({job_id})?",
                lambda: self._act(
                    "Cancel schedule",
                    lambda: self.service.cancel_schedule(job_id),
                    lambda _: f"schedule of {what} deleted",
                ),
                title="Cancel schedule",
            )

    def _failed_targets(self) -> list[FailedRow]:
        rows = self.state.rows["failed"]
        if self.state.marked:
            return [rows[key] for key in sorted(self.state.marked) if key in rows]
        row = self._selected()
        return [row] if row is not None else []

    def action_mark(self) -> None:
        """Mark or unmark the selected dead letter, then move down."""
        table = self.tables["failed"]
        key = table.selected_key
        if key is None:
            return
        toggle_mark(self.state, key)
        self._redraw("failed", key)
        table.action_cursor_down()

    def action_retry(self) -> None:
        """Requeue the selected (or marked) dead letters."""
        targets = self._failed_targets()
        job_ids = [row.job_id for row in targets if row.job_id]
        garbage = len(targets) - len(job_ids)
        if garbage:
            self.notify(
                f"{garbage} dead letter(s) have no job id and can't be requeued: delete them (d)",
                severity="warning",
            )
        if not job_ids:
            return
        self._act(
            "Requeue",
            lambda: self.service.requeue_failed(job_ids),
            lambda n: f"requeued {n} job(s)",
        )

    def action_delete_failed(self) -> None:
        """Delete the selected (or marked) dead letters (after asking)."""
        keys = [row.key for row in self._failed_targets()]
        if not keys:
            return
        what = f"dead letter {keys[0]}" if len(keys) == 1 else f"{len(keys)} dead letters"
        self._confirm(
            f"Delete {what}? They can't be requeued afterwards.",
            lambda: self._act(
                "Delete",
                lambda: self.service.delete_failed(keys),
                lambda n: f"deleted {n} dead letter(s)",
            ),
            title="Delete dead letters",
        )

    def action_purge_queue(self) -> None:
        """Drop the selected queue's pending jobs (after asking)."""
        row = self._selected()
        if row is None:
            return
        name = row.name
        self._confirm(
            f"Purge queue {name}? Its {row.pending} pending job(s) will be dropped.",
            lambda: self._act(
                f"Purge {name}",
                lambda: self.service.purge_queue(name),
                lambda n: f"purged {n} job(s) from {name}",
            ),
            title="Purge queue",
        )
