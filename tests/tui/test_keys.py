"""Every key the main screen binds, shows, lists in its help and offers in its palette
comes from the one table in :mod:`naq_tui.keys`; read-only mode binds, shows and runs
none of its mutations."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.command import CommandPalette
from textual.content import Content
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.widgets import Static

from naq_tui import app as app_module
from naq_tui.app import NaqApp
from naq_tui.commands import NaqCommands
from naq_tui.fake import FakeService
from naq_tui.keys import IN_TABLES, KEYS, Key, display
from naq_tui.screens.help import HelpScreen
from naq_tui.state import PANES, TABLES, TITLES, pane_number
from naq_tui.widgets.key_footer import KeyFooter
from naq_tui.widgets.pane_table import PaneTable
from naq_tui.widgets.pane_tabs import PaneTabs
from tests.tui.test_app_fake import cell, messages, running, wait_until

#: Every (key, action) the table binds.
TABLE = {(name, key.action) for key in KEYS for name in key.names}
#: What Textual's own App and ScrollView bind and naq does not (ctrl+q, tab, ...).
TEXTUAL_DEFAULTS = {
    (binding.key, binding.action)
    for cls in (*App.__mro__, *ScrollView.__mro__)
    for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", []))
} - TABLE


#: naq's keys Textual's screen binds first (ctrl+c copies a selection, and passes on to
#: naq's quit when there is none): the screen's binding is the one listed as active.
SHADOWED = {binding.key for binding in Binding.make_bindings(Screen.BINDINGS)} & {
    name for key in KEYS for name in key.names
}


def expected(pane: str, readonly: bool) -> list[Key]:
    """The table's rows that apply to ``pane`` (not its mutations when read-only)."""
    return [
        key
        for key in KEYS
        if (not key.panes or pane in key.panes) and not (readonly and key.mutates)
    ]


def bound(app: NaqApp) -> dict[str, Binding]:
    """naq's active bindings on the screen shown, by key (Textual's defaults left out)."""
    return {
        key: active.binding
        for key, active in app.screen.active_bindings.items()
        if isinstance(active.node, (NaqApp, PaneTable))
        and (key, active.binding.action) not in TEXTUAL_DEFAULTS
    }


def test_the_classes_bind_only_the_tables_keys() -> None:
    declared = [
        (binding.key, binding.action)
        for cls in (NaqApp, PaneTable)
        for binding in Binding.make_bindings(cls.__dict__["BINDINGS"])
    ]
    assert sorted(declared) == sorted((name, key.action) for key in KEYS for name in key.names)


@pytest.mark.parametrize("readonly", [False, True], ids=["normal", "readonly"])
async def test_each_pane_binds_and_shows_exactly_its_keys_of_the_table(readonly: bool) -> None:
    async with running(readonly=readonly) as (app, pilot, _):
        for pane in PANES:
            await pilot.press(str(pane_number(pane)))
            rows = expected(pane, readonly)
            active = bound(app)
            assert {(key, b.action) for key, b in active.items()} == {
                (name, row.action) for row in rows for name in row.names if name not in SHADOWED
            }, pane
            footer = {(key, b.description) for key, b in active.items() if b.show}
            assert footer == {
                (name, row.label)
                for row in rows
                if row.footer
                for name in row.names
                if name not in SHADOWED
            }, pane
            if readonly:
                assert not any(row.mutates for row in rows)
            elif pane not in ("overview", "workers", "metrics"):
                # The read-only case is not empty: these panes do bind mutations.
                assert any(row.mutates for row in rows), pane


def footer_text(app: NaqApp) -> str:
    """The footer's line as drawn."""
    rendered = app.query_one(KeyFooter).render()
    assert isinstance(rendered, Content)
    return rendered.plain


@pytest.mark.parametrize("readonly", [False, True], ids=["normal", "readonly"])
async def test_the_footer_draws_exactly_the_panes_keys_of_the_table(readonly: bool) -> None:
    async with running(readonly=readonly) as (app, pilot, _):
        footer = app.query_one(KeyFooter)
        for pane in PANES:
            await pilot.press(str(pane_number(pane)))
            await pilot.pause()
            labels = {row.label for row in expected(pane, readonly) if row.footer}
            assert {shown.label for shown in footer.keys} == labels, pane
            text = footer_text(app)
            for shown in footer.keys:
                assert f"{shown.display} {shown.label}" in text, (pane, shown)
            # The palette's key keeps the right end.
            assert text.endswith("▏^p Palette "), text
            assert len(text) == app.size.width


async def test_the_footer_cuts_its_keys_short_before_the_palette_at_40_columns() -> None:
    async with running(size=(40, 24), pane="failed") as (app, pilot, _):
        await pilot.pause()
        text = footer_text(app)
        assert len(text) == 40
        assert text.endswith("▏^p Palette ")
        assert text.startswith("⏎ Open")


async def test_a_click_on_a_footer_key_runs_it_as_its_key_would() -> None:
    async with running(pane="failed") as (app, pilot, _):
        text = footer_text(app)
        assert await pilot.click(KeyFooter, offset=(text.index("? Help") + 2, 0))
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        assert await pilot.click(KeyFooter, offset=(text.index("^p Palette"), 0))
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette))
        # A click between keys runs nothing.
        assert await pilot.click(KeyFooter, offset=(len(text) - len("▏^p Palette ") - 2, 0))
        await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_the_footer_key_under_the_mouse_is_highlighted() -> None:
    async with running(pane="failed") as (app, pilot, _):
        footer = app.query_one(KeyFooter)
        column = footer_text(app).index("? Help") + 2

        def background(x: int) -> object:
            """The background drawn at column ``x`` of the footer."""
            cell = footer.render_line(0).crop(x, x + 1)
            return next(segment.style.bgcolor for segment in cell if segment.style)

        plain = background(column)
        await pilot.hover(KeyFooter, offset=(column, 0))
        await pilot.pause()
        assert background(column) != plain
        assert background(0) == plain  # another key is not
        await pilot.hover(PaneTabs)
        await pilot.pause()
        assert background(column) == plain


def help_columns(screen: HelpScreen) -> dict[str, list[tuple[str, str, bool]]]:
    """The help as drawn: section title -> [(keys, what they do, struck out)]."""
    sections: dict[str, list[tuple[str, str, bool]]] = {}
    current: list[tuple[str, str, bool]] = []
    for static in screen.query(Static).filter(".help-column"):
        table = static.content
        assert isinstance(table, Table)
        keys_column, does_column = (list(column.cells) for column in table.columns)
        for keys, does in zip(keys_column, does_column, strict=True):
            keys_text = keys.plain if isinstance(keys, Text) else str(keys)
            does_text = does.plain if isinstance(does, Text) else str(does)
            if not keys_text:
                continue
            if not does_text:  # a section's title
                current = sections.setdefault(keys_text, [])
                continue
            struck = isinstance(keys, Text) and "strike" in str(keys.style)
            current.append((keys_text, does_text, struck))
    return sections


def shown_keys(keys_text: str) -> list[str]:
    """The keys a help line writes: "p r" -> [p, r]; "1-5" -> [1, 2, 3, 4, 5]."""
    shown: list[str] = []
    for part in keys_text.split():
        first, dash, last = part.partition("-")
        if dash and first.isdigit() and last.isdigit():
            shown.extend(str(n) for n in range(int(first), int(last) + 1))
        else:
            shown.append(part)
    return shown


@pytest.mark.parametrize("readonly", [False, True], ids=["normal", "readonly"])
async def test_the_help_lists_exactly_the_tables_keys(readonly: bool) -> None:
    async with running(readonly=readonly) as (app, pilot, _):
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        drawn = help_columns(app.screen)
    wanted: dict[str, list[Key]] = {
        "Everywhere": [key for key in KEYS if not key.panes],
        IN_TABLES: [key for key in KEYS if key.panes == TABLES],
    }
    for pane in PANES:
        rows = [key for key in KEYS if pane in key.panes and key.panes != TABLES]
        if rows:
            wanted[TITLES[pane]] = rows
    assert list(drawn) == list(wanted)
    for title, rows in wanted.items():
        pane = next((p for p in PANES if TITLES[p] == title), None)
        lines = drawn[title]
        # Every row of the table is on a line of its section, saying what it does there...
        for row in rows:
            does = row.group or (row.does_on(pane) if pane else row.does)
            matching = [line for line in lines if display(row) in shown_keys(line[0])]
            assert [line[1] for line in matching] == [does], (title, row)
            assert matching[0][2] == (readonly and row.mutates), (title, row)
        # ... and the section lists no other key.
        assert {key for line in lines for key in shown_keys(line[0])} == {
            display(row) for row in rows
        }, title


async def palette(app: NaqApp) -> list[tuple[str, str | None]]:
    """What the palette offers on the pane shown: (title, help)."""
    provider = NaqCommands(app.screen)
    return [(str(hit.display), hit.help) async for hit in provider.discover()]


@pytest.mark.parametrize("readonly", [False, True], ids=["normal", "readonly"])
async def test_the_palette_offers_exactly_the_tables_commands(readonly: bool) -> None:
    async with running(readonly=readonly) as (app, pilot, _):
        for pane in PANES:
            await pilot.press(str(pane_number(pane)))
            offered = await palette(app)
            rows = [row for row in expected(pane, readonly) if row.title is not None]
            assert sorted(offered) == sorted(
                (row.title, f"{display(row)}: {row.does_on(pane)}") for row in rows
            ), pane


async def test_readonly_refuses_every_mutation_of_the_table() -> None:
    mutations = [key for key in KEYS if key.mutates]
    assert mutations
    async with running(readonly=True) as (app, pilot, fake):
        for pane in PANES:
            await pilot.press(str(pane_number(pane)))
            for row in mutations:
                if pane not in row.panes:
                    continue
                # Invoked by name (as the palette would), the action does not run.
                assert await app.run_action(row.action) is False, (pane, row.action)
                before = len(messages(app))
                await pilot.press(row.names[0])
                await pilot.pause()
                assert app.screen is app.screen_stack[0], (pane, row.key)  # no dialog
                assert len(messages(app)) == before + 1, (pane, row.key)
                assert "read-only" in messages(app)[-1]
        assert fake.calls == []
        assert not app.state.marked


async def test_a_mutation_runs_when_not_read_only() -> None:
    # The counterpart of the test above: the same call by name does run.
    async with running() as (app, pilot, fake):
        assert app.tables["queues"].select_key("emails")
        assert await app.run_action("pause") is True
        await wait_until(pilot, lambda: cell(app, "queues", "emails", "state") == "paused")
        assert fake.calls == [("pause_queue", "emails")]


def test_every_row_is_complete() -> None:
    actions = [key.action for key in KEYS]
    for key in KEYS:
        assert key.label and key.does, key
        assert set(key.panes) <= set(PANES), key
        assert set(key.does_in) <= set(key.panes), key
        # A key bound twice is bound in different panes, so one press does one thing.
        for other in KEYS:
            if other is not key and set(other.names) & set(key.names):
                assert key.panes and other.panes and not set(key.panes) & set(other.panes)
    # An action bound to several keys is one row per key with the same panes and words
    # (: and ctrl+p), so the help and the palette say the same of each.
    for key in KEYS:
        for other in KEYS:
            if other.action == key.action:
                assert (other.panes, other.group, other.mutates) == (
                    key.panes,
                    key.group,
                    key.mutates,
                )
    assert len(actions) > len(set(actions))


def test_the_app_does_not_animate_unless_asked_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    assert NaqApp(FakeService()).animation_level == "none"
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "full")
    assert NaqApp(FakeService()).animation_level == "full"


async def test_the_footer_is_drawn_when_the_app_opens_unfocused() -> None:
    class Unfocused(NaqApp):
        """A browser's tab that opens in the background."""

        CSS_PATH = str(Path(app_module.__file__).with_name(NaqApp.CSS_PATH))

        def on_mount(self) -> None:
            self.app_focus = False

    app = Unfocused(FakeService())
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(app.query_one(KeyFooter).keys))
        assert not app.app_focus
        assert "? Help" in footer_text(app)
        app.app_focus = True
        await pilot.press("5")
        await wait_until(pilot, lambda: "Requeue" in footer_text(app))
