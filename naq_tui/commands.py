"""The command palette (``:`` or ctrl+p): jump to a pane or run an action."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from naq_tui.app import NaqApp

#: (title, action, help); actions are the app's, so check_action decides what is offered.
PANE_COMMANDS = (
    ("Go to Queues", "show_pane('queues')", "pane 1: pending, running, paused queues"),
    ("Go to Workers", "show_pane('workers')", "pane 2: workers and their heartbeats"),
    ("Go to Scheduled", "show_pane('scheduled')", "pane 3: cron and interval schedules"),
    ("Go to Jobs", "show_pane('jobs')", "pane 4: recent and running jobs"),
    ("Go to Failed", "show_pane('failed')", "pane 5: dead letters"),
)
ACTION_COMMANDS = (
    ("Job detail", "open_detail", "enter: the selected job's args, timeline, result"),
    ("Pause", "pause", "p: pause the selected schedule or queue"),
    ("Resume", "resume", "r: resume the selected schedule or queue"),
    ("Reschedule", "reschedule", "e: new cron, interval or next run"),
    ("Cancel", "cancel", "c: cancel the selected job or schedule"),
    ("Requeue dead letters", "retry", "R: requeue the selected or marked dead letters"),
    ("Delete dead letters", "delete_failed", "d: delete the selected or marked dead letters"),
    ("Purge queue", "purge_queue", "d: drop the selected queue's pending jobs"),
    ("Mark / unmark", "mark", "space: mark the dead letter for a bulk action"),
    ("Filter", "filter", "/: narrow the rows of this pane"),
    ("Sort by next column", "sort", "s: cycle the sort column"),
    ("Reverse sort", "sort_reverse", "S: reverse the order"),
    ("Help", "help", "?: every key"),
    ("Quit", "quit", "q: leave naq"),
)


class NaqCommands(Provider):
    """Panes to jump to, and the actions that apply to the current pane."""

    def _commands(self) -> list[tuple[str, str, str]]:
        app = cast("NaqApp", self.app)
        offered = list(PANE_COMMANDS)
        for title, action, help_text in ACTION_COMMANDS:
            # The same rule as the footer: nothing read-only mode or the pane forbids.
            if app.check_action(action, ()):
                offered.append((title, action, help_text))
        return offered

    async def discover(self) -> Hits:
        for title, action, help_text in self._commands():
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self._run, action), help=help_text
                )

    async def _run(self, action: str) -> None:
        await self.app.run_action(action)
