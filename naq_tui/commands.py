"""The command palette (``:`` or ctrl+p): jump to a pane or run an action."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from naq_tui.keys import PaletteCommand, palette_commands

if TYPE_CHECKING:
    from naq_tui.app import NaqApp


class NaqCommands(Provider):
    """Panes to jump to, and the actions that apply to the current pane."""

    def _commands(self) -> list[PaletteCommand]:
        app = cast("NaqApp", self.app)
        # The same rule as the footer's: nothing read-only mode or the pane forbids.
        return [
            command
            for command in palette_commands(app.pane)
            if app.check_action(command.row.name, ())
        ]

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, partial(self._run, command.action), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    partial(self._run, command.action),
                    help=command.help,
                )

    async def _run(self, action: str) -> None:
        await self.app.run_action(action)
