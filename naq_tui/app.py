"""NaqApp: the Overview and six live tables over a :class:`~naq_tui.service.Service`.

Data flows one way: ``service.changes()`` -> one watch worker (bursts coalesced:
up to 50 ms or 500 changes per batch) -> :func:`naq_tui.state.reduce` -> the dirty
rows of the pane on show, updated by key. Hidden panes collect their dirty keys and
are drawn when shown; while a backlog drains (a catch-up of a large history) batches
are only reduced, and drawn once caught up (or every half second meanwhile). The
Overview is drawn whole from the state, when shown and something it shows changed.
Actions go back through the service, from workers, so the UI never waits on NATS;
the service's own change stream then brings the result to the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.css.query import NoMatches
from textual.events import Key, Resize
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input

from naq_tui.actions import error_text
from naq_tui.commands import NaqCommands
from naq_tui.keys import allowed, asks_for_change, bindings
from naq_tui.service import Change, Connection, Service
from naq_tui.state import (
    PANES,
    TABLES,
    TITLES,
    Dirty,
    State,
    matches,
    pane_number,
    reduce,
)
from naq_tui.summary import problems
from naq_tui.views import PaneViews
from naq_tui.widgets.filter_input import FilterInput
from naq_tui.widgets.header import HeaderBar
from naq_tui.widgets.key_footer import KeyFooter
from naq_tui.widgets.overview import Overview
from naq_tui.widgets.pane_table import WIDE, PaneTable
from naq_tui.widgets.pane_tabs import PaneTabs

#: Panes whose rows the Overview draws from.
OVERVIEW_SOURCES = frozenset({"queues", "workers", "metrics"})


class _Ended:
    """Put on the batch queue when the service's change stream stops."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class MainScreen(Screen[None]):
    """The screen of the panes. The app gives the keyboard itself (to the shown pane's
    table; on the Overview to no widget): Textual's auto focus could pick a hidden table."""

    AUTO_FOCUS = ""


class NaqApp(PaneViews):
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
    #: Changes are drawn at most this often (a key's effect is drawn at once): a busy
    #: system changes the screen many times a second, and each frame costs the same.
    DRAW_MIN = 0.25
    #: ... and at most this often while the job changes are sampled: they come faster
    #: than anyone reads them, and each frame of a busy Jobs pane redraws most of its rows.
    DRAW_MIN_SAMPLED = 1.0
    #: Changed keys a hidden pane remembers before it settles for a full redraw.
    STALE_MAX = 5000
    #: Pause before asking the service for its changes again after the stream failed.
    RETRY_SECONDS = 2.0

    #: Every key of the main screen comes from the one table in naq_tui.keys.
    BINDINGS = bindings("app")

    def __init__(self, service: Service, readonly: bool = False) -> None:
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # Every frame of an animation costs CPU on a busy host and bytes over SSH or the
            # dashboard's socket, for looks only: off unless asked for.
            self.animation_level = "none"
        self.pane = PANES[0]
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
        #: When changes were last drawn (the loop's clock), and the drawing due after it.
        self._drawn_at = 0.0
        self._draw_timer: Timer | None = None
        #: The task reading the service's change stream, while one runs.
        self._pump_task: asyncio.Task[None] | None = None
        #: Something the Overview shows changed since it was last drawn.
        self._overview_stale = True
        #: The terminal's width after its last resize (0: not resized yet).
        self._width = 0

    # -- layout -----------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        """The screen of the panes."""
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.service.url, readonly=self.readonly)
        yield PaneTabs(list(PANES), self.pane, id="tabs")
        # Every pane is a child of the screen, all but the shown one hidden: showing
        # another is two display flags and one layout.
        for pane in PANES:
            widget = Overview() if pane not in TABLES else PaneTable(pane)
            if isinstance(widget, PaneTable):
                self.tables[pane] = widget
            widget.display = pane == self.pane
            yield widget
        yield FilterInput()
        yield KeyFooter()

    def on_mount(self) -> None:
        now = self.service.now()
        for table in self.tables.values():
            table.rebuild(self.state, now)
        self.query_one(FilterInput).display = False
        for pane in PANES:
            self._update_tab(pane)
        self.watch_changes()
        self.set_interval(1.0, self._tick)
        self._draw_overview()
        self._focus(self.pane)

    def _focus(self, pane: str) -> None:
        """Give the keyboard to the pane's table (on the Overview, to no widget: the app's
        keys are all it has, and a focused container restyles all its parts)."""
        if pane in self.tables:
            self.tables[pane].focus()
        else:
            self.screen.set_focus(None)

    def _tab_label(self, pane: str) -> Content:
        # Below WIDE columns the tabs leave out their number keys, so all seven fit.
        number: list[str | tuple[str, str]] = (
            [(f"{pane_number(pane)} ", "dim")] if (self._width or self.size.width) >= WIDE else []
        )
        if pane not in TABLES:
            found = problems(self.state)
            flag: list[str | tuple[str, str]] = [(f" ▲{len(found)}", "bold red")] if found else []
            return Content.assemble(*number, TITLES[pane], *flag)
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
            *number,
            TITLES[pane],
            " ",
            (count, "bold"),
        ]
        if pane == "failed" and self.state.marked:
            parts.append((f" ✓{len(self.state.marked)}", "green"))
        return Content.assemble(*parts)

    def on_resize(self, event: Resize) -> None:
        # Read before the screen has its new size: the tabs are labelled for the event's.
        self._width = event.size.width
        for pane in PANES:
            self._update_tab(pane)

    def _update_tab(self, pane: str) -> None:
        try:
            tabs = self.query_one(PaneTabs)
        except NoMatches:
            return  # the app is closing: a last batch of changes has nothing to draw on
        tabs.set_label(pane, self._tab_label(pane))

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
            # table is drawn once it has caught up, or every DRAW_SECONDS meanwhile; and
            # never sooner than DRAW_MIN (while sampled, DRAW_MIN_SAMPLED) after the last
            # drawing (a later one is due then).
            since = loop.time() - self._drawn_at
            gap = self.DRAW_MIN_SAMPLED if self.state.sampling.every else self.DRAW_MIN
            draw = (queue.empty() or since >= self.DRAW_SECONDS) and since >= gap
            self.apply(batch, draw=draw)
            if not draw and queue.empty() and self._draw_timer is None:
                self._draw_timer = self.set_timer(gap - since, self._draw_due)
            # Let key presses in between batches.
            await asyncio.sleep(0)

    def _draw_due(self) -> None:
        self._draw_timer = None
        with contextlib.suppress(NoMatches):  # the app closed meanwhile: nothing to draw on
            self.draw()

    def apply(self, batch: list[Change], draw: bool = True) -> Dirty:
        """Reduce a batch into the state; redraw exactly the rows it touched (if ``draw``)."""
        dirty = reduce(self.state, batch)
        self.batches += 1
        if dirty.series or OVERVIEW_SOURCES & dirty.rows.keys():
            self._overview_stale = True
            self._retab.add(PANES[0])
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
        if dirty.sampling:
            self.query_one(HeaderBar).set_sampling(self.state.sampling.note())
        if draw:
            self.draw()
        return dirty

    def draw(self) -> None:
        """Draw what changed: the shown pane's rows by key, and every tab's count.

        A hidden pane keeps collecting its changed keys and is drawn when shown.
        """
        self._drawn_at = asyncio.get_running_loop().time()
        if not self._retab:
            return
        shown = self.pane
        with self.batch_update():
            if shown not in self.tables:
                self._draw_overview()
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

    def _draw_overview(self) -> None:
        if self._overview_stale:
            self._overview_stale = False
            self.query_one(Overview).show(self.state, self.service.now())

    def _tick(self) -> None:
        # Only ages ("4s", "in 3m") move with the clock; nothing else is redrawn on a timer.
        pane = self.pane
        if pane in self.tables:
            self.tables[pane].refresh_times(self.state, self.service.now())

    def _redraw(self, pane: str, key: str | None = None) -> None:
        """Redraw a pane after a view change (filter, sort) or one row's mark."""
        dirty = Dirty()
        if key is not None:
            dirty.add(pane, key)
        self.tables[pane].sync(self.state, dirty, self.service.now())
        self._update_tab(pane)

    # -- panes, filter, sort ----------------------------------------------------

    def action_show_pane(self, pane: str) -> None:
        """Show a pane (the number keys, or a click on its tab)."""
        if pane == self.pane:
            return
        # Bring the pane up to date first: the frame that shows it is then the only one.
        self._bring_up_to_date(pane)
        self.pane_widget(self.pane).display = False
        self.pane_widget(pane).display = True
        self.pane = pane
        self.query_one(PaneTabs).active = pane
        filter_input = self.query_one(FilterInput)
        if filter_input.display and pane in self.tables:
            with filter_input.prevent(Input.Changed):
                filter_input.value = self.state.views[pane].filter
            self.refresh_bindings()
        else:
            # The focus moving refreshes the bindings (and the footer) too.
            self._focus(pane)

    def pane_widget(self, pane: str) -> PaneTable | Overview:
        """The widget that shows ``pane``: its table, or the Overview."""
        return self.tables[pane] if pane in self.tables else self.query_one(Overview)

    @on(PaneTabs.Chosen)
    def _tab_clicked(self, event: PaneTabs.Chosen) -> None:
        self.action_show_pane(event.pane)

    def _bring_up_to_date(self, pane: str) -> None:
        """Draw what a pane missed while hidden (nothing when it missed nothing)."""
        if pane not in self.tables:
            self._draw_overview()
            return
        table = self.tables[pane]
        now = self.service.now()
        stale = self._stale.pop(pane, None)
        if pane in self._redraw_all:
            self._redraw_all.discard(pane)
            table.rebuild(self.state, now)
        elif stale:
            table.sync(self.state, Dirty(rows={pane: stale}), now)
        table.refresh_times(self.state, now)

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
