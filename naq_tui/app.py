"""NaqApp: five live panes over a :class:`~naq_tui.service.Service`.

Data flows one way: ``service.changes()`` -> one watch worker (bursts coalesced:
up to 50 ms or 500 changes per batch) -> :func:`naq_tui.state.reduce` -> the dirty
rows of the pane on show, updated by key. Hidden panes collect their dirty keys and
are drawn when shown; while a backlog drains (a catch-up of a large history) batches
are only reduced, and drawn once caught up (or every half second meanwhile).
Actions go back through the service, from workers, so the UI never waits on NATS;
the service's own change stream then brings the result to the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.content import Content
from textual.css.query import NoMatches
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, TabbedContent, TabPane

from naq_tui.columns import DEFAULT_SORT, short_function
from naq_tui.commands import NaqCommands
from naq_tui.keys import allowed, asks_for_change, bindings
from naq_tui.screens.confirm import ConfirmScreen
from naq_tui.screens.help import HelpScreen
from naq_tui.screens.job_detail import JobDetailScreen
from naq_tui.screens.reschedule import Reschedule, RescheduleScreen
from naq_tui.service import Change, Connection, FailedRow, Service
from naq_tui.state import PANES, TITLES, Dirty, State, cycle_sort, matches, reduce, toggle_mark
from naq_tui.widgets.filter_input import FilterInput
from naq_tui.widgets.header import HeaderBar
from naq_tui.widgets.pane_table import MARK, PaneTable

T = TypeVar("T")


class _Ended:
    """Put on the batch queue when the service's change stream stops."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def error_text(exc: BaseException) -> str:
    """An exception as one line for a notification (never a traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


class NaqApp(App[None]):
    """The naq terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "naq"
    # Only naq's commands: panes and actions (quit is among them), not Textual's system ones.
    COMMANDS = {NaqCommands}
    #: How long a burst of changes is collected before one reduce + one repaint.
    BATCH_SECONDS = 0.05
    #: ... or how many changes, whichever comes first.
    BATCH_MAX = 500
    #: While a backlog drains, draw at least this often.
    DRAW_SECONDS = 0.5
    #: Changed keys a hidden pane remembers before it settles for a full redraw.
    STALE_MAX = 5000
    #: Pause before asking the service for its changes again after the stream failed.
    RETRY_SECONDS = 2.0

    #: Every key of the main screen comes from the one table in naq_tui.keys.
    BINDINGS = bindings("app")

    def __init__(self, service: Service, readonly: bool = False) -> None:
        super().__init__()
        self.service = service
        self.readonly = readonly
        self.state = State()
        #: Batches applied so far (each is one reduce and one repaint).
        self.batches = 0
        self.tables: dict[str, PaneTable] = {}
        #: Rows changed in panes not on show, to draw when they are shown.
        self._stale: dict[str, set[str]] = {}
        #: Panes that missed more than STALE_MAX changes: redrawn whole when shown.
        self._redraw_all: set[str] = set()
        #: Panes whose row count may have changed since the tabs were last drawn.
        self._retab: set[str] = set()
        #: The task reading the service's change stream, while one runs.
        self._pump_task: asyncio.Task[None] | None = None

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.service.url, readonly=self.readonly)
        with TabbedContent(initial="queues", id="panes"):
            for pane in PANES:
                with TabPane(self._tab_label(pane), id=pane):
                    table = PaneTable(pane)
                    self.tables[pane] = table
                    yield table
        yield FilterInput()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        now = self.service.now()
        for table in self.tables.values():
            table.rebuild(self.state, now)
        self.query_one(FilterInput).display = False
        self.watch_changes()
        self.set_interval(1.0, self._tick)
        self.tables[self.pane].focus()

    @property
    def pane(self) -> str:
        """The pane on show."""
        return self.query_one("#panes", TabbedContent).active or "queues"

    def _tab_label(self, pane: str) -> Content:
        number = PANES.index(pane) + 1
        rows = self.state.rows[pane]
        text = self.state.views[pane].filter
        if text:
            # The shown pane's table has just filtered its rows: count those, not again.
            table = self.tables.get(pane)
            shown = table.row_count if table is not None and pane == self.pane else None
            if shown is None:
                shown = sum(1 for row in rows.values() if matches(row, text))
            count = f"{shown}/{len(rows)}"
        else:
            count = str(len(rows))
        parts: list[str | tuple[str, str]] = [
            (f"{number} ", "dim"),
            TITLES[pane],
            " ",
            (count, "bold"),
        ]
        if pane == "failed" and self.state.marked:
            parts.append((f" ✓{len(self.state.marked)}", "green"))
        return Content.assemble(*parts)

    def _update_tab(self, pane: str) -> None:
        try:
            tabs = self.query_one("#panes", TabbedContent)
            tab = tabs.get_tab(pane)
        except NoMatches:
            return  # the app is closing: a last batch of changes has nothing to draw on
        tab.label = self._tab_label(pane)

    # -- the one worker that owns the watches -----------------------------------

    @work(exclusive=True, group="changes")
    async def watch_changes(self) -> None:
        """Feed the service's changes to the state, a coalesced batch at a time."""
        while True:
            queue: asyncio.Queue[Change | _Ended] = asyncio.Queue()
            self._pump_task = asyncio.create_task(self._pump(queue))
            try:
                ended = await self._consume(queue)
            finally:
                await self._stop_pump()
            detail = error_text(ended.error) if ended.error else "change stream ended"
            self.apply([Connection("disconnected", self.service.url, detail)])
            await asyncio.sleep(self.RETRY_SECONDS)

    async def _stop_pump(self) -> None:
        """Stop the change stream and wait until it has closed its connection."""
        pump, self._pump_task = self._pump_task, None
        if pump is None:
            return
        pump.cancel()
        # The stream closes its NATS connection as it ends: wait, or it outlives the app.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump

    async def on_unmount(self) -> None:
        # Textual cancels workers without waiting for them; the stream is waited for here.
        await self._stop_pump()

    async def _pump(self, queue: asyncio.Queue[Change | _Ended]) -> None:
        try:
            async for change in self.service.changes():
                queue.put_nowait(change)
        except Exception as exc:  # the stream failed: say so, then ask again
            queue.put_nowait(_Ended(exc))
        else:
            queue.put_nowait(_Ended(None))

    async def _consume(self, queue: asyncio.Queue[Change | _Ended]) -> _Ended:
        loop = asyncio.get_running_loop()
        last_draw = loop.time()
        while True:
            item = await queue.get()
            batch: list[Change] = []
            deadline = loop.time() + self.BATCH_SECONDS
            while True:
                if isinstance(item, _Ended):
                    self.apply(batch)
                    return item
                batch.append(item)
                if len(batch) >= self.BATCH_MAX:
                    break
                if not queue.empty():
                    item = queue.get_nowait()
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            # While a backlog drains (catching up after a connect), only reduce: the
            # table is drawn once it has caught up, or every DRAW_SECONDS meanwhile.
            draw = queue.empty() or loop.time() - last_draw >= self.DRAW_SECONDS
            self.apply(batch, draw=draw)
            if draw:
                last_draw = loop.time()
            # Let key presses in between batches.
            await asyncio.sleep(0)

    def apply(self, batch: list[Change], draw: bool = True) -> Dirty:
        """Reduce a batch into the state; redraw exactly the rows it touched (if ``draw``)."""
        dirty = reduce(self.state, batch)
        self.batches += 1
        for pane, keys in dirty.rows.items():
            self._retab.add(pane)
            if pane in self._redraw_all:
                continue
            stale = self._stale.setdefault(pane, set())
            stale.update(keys)
            if len(stale) > self.STALE_MAX:
                # A hidden pane that missed this much is redrawn whole when shown.
                self._redraw_all.add(pane)
                del self._stale[pane]
        if dirty.connection:
            self.query_one(HeaderBar).set_connection(self.state.connection)
        if draw:
            self.draw()
        return dirty

    def draw(self) -> None:
        """Draw what changed: the shown pane's rows by key, and every tab's count.

        A hidden pane keeps collecting its changed keys and is drawn when shown.
        """
        if not self._retab:
            return
        shown = self.pane
        with self.batch_update():
            keys = self._stale.pop(shown, None)
            if shown in self._redraw_all:
                self._redraw_all.discard(shown)
                self.tables[shown].rebuild(self.state, self.service.now())
            elif keys:
                self.tables[shown].sync(self.state, Dirty(rows={shown: keys}), self.service.now())
            # After the shown table is drawn: its tab counts the rows it shows.
            for pane in self._retab:
                self._update_tab(pane)
            if "failed" in self._retab:
                self.refresh_bindings()
        self._retab.clear()

    def _tick(self) -> None:
        # Only ages ("4s", "in 3m") move with the clock; nothing else is redrawn on a timer.
        self.tables[self.pane].refresh_times(self.state, self.service.now())

    def _redraw(self, pane: str, key: str | None = None) -> None:
        """Redraw a pane after a view change (filter, sort) or one row's mark."""
        dirty = Dirty()
        if key is not None:
            dirty.add(pane, key)
        self.tables[pane].sync(self.state, dirty, self.service.now())
        self._update_tab(pane)

    # -- panes, filter, sort ----------------------------------------------------

    def action_show_pane(self, pane: str) -> None:
        """Show a pane (keys 1-5)."""
        self.query_one("#panes", TabbedContent).active = pane
        self.tables[pane].focus()

    @on(TabbedContent.TabActivated)
    def _pane_shown(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id or "queues"
        table = self.tables[pane]
        now = self.service.now()
        stale = self._stale.pop(pane, None)
        if pane in self._redraw_all:
            self._redraw_all.discard(pane)
            table.rebuild(self.state, now)
        elif stale:
            table.sync(self.state, Dirty(rows={pane: stale}), now)
        table.refresh_times(self.state, now)
        filter_input = self.query_one(FilterInput)
        if filter_input.display:
            with filter_input.prevent(Input.Changed):
                filter_input.value = self.state.views[pane].filter
        else:
            table.focus()
        self.refresh_bindings()

    def action_filter(self) -> None:
        """Open the filter input for the current pane."""
        filter_input = self.query_one(FilterInput)
        with filter_input.prevent(Input.Changed):
            filter_input.value = self.state.views[self.pane].filter
        filter_input.display = True
        # At once, not at the next idle moment (focus() defers): the keys typed right after
        # "/" are the filter's, not the pane's ("c" would be cancel).
        self.screen.set_focus(filter_input)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        pane = self.pane
        if self.state.views[pane].filter != event.value:
            self.state.views[pane].filter = event.value
            self._redraw(pane)

    @on(FilterInput.Closed)
    def _filter_closed(self, event: FilterInput.Closed) -> None:
        pane = self.pane
        if event.cleared and self.state.views[pane].filter:
            self.state.views[pane].filter = ""
            self._redraw(pane)
        self.query_one(FilterInput).display = False
        self.tables[pane].focus()

    def action_sort(self) -> None:
        """Sort the pane by its next column."""
        pane = self.pane
        # The columns on show (a narrow terminal hides a few).
        keys = [column.key for column in self.tables[pane].specs]
        current = self.state.views[pane].sort_column or DEFAULT_SORT[pane][0]
        index = keys.index(current) if current in keys else -1
        cycle_sort(self.state, pane, keys[(index + 1) % len(keys)])
        self._redraw(pane)

    def action_sort_reverse(self) -> None:
        """Reverse the pane's order."""
        pane = self.pane
        view = self.state.views[pane]
        if view.sort_column is None:
            default_key, default_reverse = DEFAULT_SORT[pane]
            view.sort_column, view.sort_reverse = default_key, not default_reverse
        else:
            view.sort_reverse = not view.sort_reverse
        self._redraw(pane)

    @on(PaneTable.RowSelected)
    def _row_clicked(self, event: PaneTable.RowSelected) -> None:
        # Enter is bound to open_detail directly; this is a click on the selected row.
        if self.check_action("open_detail", ()):
            self.action_open_detail()

    @on(PaneTable.HeaderSelected)
    def _header_clicked(self, event: PaneTable.HeaderSelected) -> None:
        if event.column == MARK:
            return
        cycle_sort(self.state, event.table.pane, event.column)
        self._redraw(event.table.pane)

    # -- which actions apply ----------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide mutations when read-only, and actions that don't apply to this pane."""
        return allowed(action, self.pane, self.readonly)

    def on_key(self, event: Key) -> None:
        focused = self.focused
        if isinstance(focused, Input) and event.is_printable and event.character:
            # Typed while the keyboard moved to an input (right after "/"): the key had
            # already gone to the table; an input that saw it would have kept it.
            focused.insert_text_at_cursor(event.character)
            event.stop()
            return
        # A refused mutation gets no binding (check_action), so its key lands here.
        if (
            self.readonly
            and asks_for_change(event.key, self.pane)
            and not isinstance(self.screen, ModalScreen)
            and not isinstance(self.focused, Input)
        ):
            event.stop()
            self.notify("read-only: changes are disabled (--readonly)", severity="warning")

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
