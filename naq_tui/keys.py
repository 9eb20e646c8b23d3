"""Every key of the main screen, written once.

:data:`KEYS` is the one table: each row is a key, the action it runs, the words the
footer, the help screen and the command palette show for it, the panes it applies to
and whether it changes something. The app's and the pane tables' bindings, the footer
(drawn from those bindings), the ``?`` screen, the palette's commands and
the read-only rule are all derived from it here; nothing else names a key.

Dialogs (confirm, reschedule, limits, job detail, help, the filter input) keep their own
few keys: they apply only while that dialog is open and are shown in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from textual.binding import Binding, BindingType

from naq_tui.state import PANES, TABLES, TITLES, pane_number

#: Where a key is bound: on the app, or on the pane tables (whose keys replace the
#: scrolling ones a table inherits, and lead the footer while it has the focus).
Scope = Literal["app", "table"]


@dataclass(frozen=True)
class Key:
    """One key: what it runs, where, and the words shown for it."""

    #: Textual key name; several, comma-separated, bind the same action ("home,ctrl+home").
    key: str
    #: The action, with its parameters if any: ``"show_pane('jobs')"``; a table's key
    #: runs the table's own action unless it names the app's (``"app.open_detail"``).
    action: str
    #: The footer's label.
    label: str
    #: What it does: the help screen's line and the palette's help (short: a help column).
    does: str
    #: Panes it applies to (elsewhere it is not bound, shown or offered); empty: every pane.
    #: ``TABLES``: every table (all but the Overview).
    panes: tuple[str, ...] = ()
    #: What it does in a particular pane, where that differs from ``does``.
    does_in: Mapping[str, str] = field(default_factory=dict)
    #: It changes something: hidden and refused when the app is read-only.
    mutates: bool = False
    #: Shown in the footer.
    footer: bool = True
    #: The palette's title for it; None: not offered in the palette.
    title: str | None = None
    #: Keys with the same group share one line of the help screen, with this text.
    group: str | None = None
    scope: Scope = "app"
    #: Bound before any widget's own binding of the same key.
    priority: bool = False

    @property
    def name(self) -> str:
        """The action's name, without namespace or parameters (what ``check_action`` gets)."""
        return self.action.split("(", 1)[0].rsplit(".", 1)[-1]

    @property
    def names(self) -> tuple[str, ...]:
        """The Textual key names it binds."""
        return tuple(part.strip() for part in self.key.split(","))

    def applies(self, pane: str) -> bool:
        """Whether the key does something in ``pane``."""
        return not self.panes or pane in self.panes

    def does_on(self, pane: str) -> str:
        """What it does in ``pane``."""
        return self.does_in.get(pane, self.does)

    @property
    def of_some_panes(self) -> bool:
        """It applies to a few panes (not to every pane, nor to every table)."""
        return bool(self.panes) and self.panes != TABLES


_PANE_BLURBS = {
    "overview": "throughput, queue latency, workers, failures",
    "metrics": "each function's runs, failures and timings",
    "queues": "pending, running, paused queues",
    "workers": "workers and their heartbeats",
    "scheduled": "cron and interval schedules",
    "jobs": "recent and running jobs",
    "failed": "dead letters",
}
_DETAIL_PANES = ("jobs", "failed", "scheduled")

KEYS: tuple[Key, ...] = (
    # -- every pane, or every table (panes=TABLES): the help lists these first ---------
    *(
        Key(
            str(pane_number(pane)),
            f"show_pane('{pane}')",
            TITLES[pane],
            _PANE_BLURBS[pane],
            footer=False,
            title=f"Go to {TITLES[pane]}",
            group="switch pane",
        )
        for pane in PANES
    ),
    Key(
        "up",
        "cursor_up",
        "Up",
        "up a row",
        panes=TABLES,
        footer=False,
        group="move the cursor",
        scope="table",
    ),
    Key(
        "down",
        "cursor_down",
        "Down",
        "down a row",
        panes=TABLES,
        footer=False,
        group="move the cursor",
        scope="table",
    ),
    Key(
        "pageup",
        "page_up",
        "Page up",
        "a page up",
        panes=TABLES,
        footer=False,
        group="a page up / down",
        scope="table",
    ),
    Key(
        "pagedown",
        "page_down",
        "Page down",
        "a page down",
        panes=TABLES,
        footer=False,
        group="a page up / down",
        scope="table",
    ),
    Key(
        "home,ctrl+home",
        "cursor_first",
        "First",
        "the first row",
        panes=TABLES,
        footer=False,
        group="first / last row",
        scope="table",
    ),
    Key(
        "end,ctrl+end",
        "cursor_last",
        "Last",
        "the last row",
        panes=TABLES,
        footer=False,
        group="first / last row",
        scope="table",
    ),
    Key(
        "left",
        "scroll_left",
        "Left",
        "scroll left",
        panes=TABLES,
        footer=False,
        group="scroll sideways",
        scope="table",
    ),
    Key(
        "right",
        "scroll_right",
        "Right",
        "scroll right",
        panes=TABLES,
        footer=False,
        group="scroll sideways",
        scope="table",
    ),
    Key(
        "colon",
        "command_palette",
        "Palette",
        "command palette",
        footer=False,
        group="command palette",
    ),
    # Named here because a binding to command_palette stops App adding its own; a
    # priority binding, so it opens the palette from the filter input too.
    Key(
        "ctrl+p",
        "command_palette",
        "Palette",
        "command palette",
        footer=False,
        group="command palette",
        priority=True,
    ),
    Key("slash", "filter", "Find", "filter (escape clears)", panes=TABLES, title="Filter"),
    Key(
        "s",
        "sort",
        "Sort",
        "sort by the next column",
        panes=TABLES,
        title="Sort by next column",
        group="next / reverse sort",
    ),
    Key(
        "S",
        "sort_reverse",
        "Reverse sort",
        "reverse the order",
        panes=TABLES,
        footer=False,
        title="Reverse sort",
        group="next / reverse sort",
    ),
    Key("question_mark", "help", "Help", "this help", title="Help"),
    Key("q,ctrl+c", "quit", "Quit", "quit", title="Quit"),
    # -- some panes (the help lists these pane by pane; the footer shows them first) ----
    Key(
        "enter",
        "app.open_detail",
        "Open",
        "job detail",
        panes=_DETAIL_PANES,
        title="Job detail",
        scope="table",
    ),
    Key(
        "p",
        "pause",
        "Pause",
        "pause",
        panes=("queues", "scheduled"),
        does_in={"queues": "pause the queue", "scheduled": "pause the schedule"},
        mutates=True,
        title="Pause",
        group="pause / resume",
    ),
    Key(
        "r",
        "resume",
        "Resume",
        "resume",
        panes=("queues", "scheduled"),
        does_in={"queues": "resume the queue", "scheduled": "resume the schedule"},
        mutates=True,
        title="Resume",
        group="pause / resume",
    ),
    Key(
        "e",
        "reschedule",
        "Edit",
        "reschedule",
        panes=("scheduled",),
        mutates=True,
        title="Reschedule",
    ),
    Key(
        "c",
        "cancel",
        "Cancel",
        "cancel (asks)",
        panes=("jobs", "scheduled"),
        does_in={"jobs": "cancel the job (asks)", "scheduled": "delete schedule (asks)"},
        mutates=True,
        title="Cancel",
    ),
    Key(
        "space",
        "mark",
        "Mark",
        "mark / unmark",
        panes=("failed",),
        mutates=True,
        title="Mark / unmark",
    ),
    Key(
        "R",
        "retry",
        "Requeue",
        "requeue selected/marked",
        panes=("failed",),
        mutates=True,
        title="Requeue dead letters",
    ),
    Key(
        "d",
        "purge_queue",
        "Purge",
        "purge pending (asks)",
        panes=("queues",),
        mutates=True,
        title="Purge queue",
    ),
    Key(
        "l",
        "limits",
        "Limits",
        "limit concurrency / rate",
        panes=("queues",),
        mutates=True,
        title="Queue limits",
    ),
    Key(
        "d",
        "delete_failed",
        "Delete",
        "delete them (asks)",
        panes=("failed",),
        mutates=True,
        title="Delete dead letters",
    ),
)

#: Action names that change something: refused and hidden when read-only.
MUTATIONS = frozenset(key.name for key in KEYS if key.mutates)
#: Action name -> the panes it applies to (actions not here apply everywhere).
ACTION_PANES: dict[str, frozenset[str]] = {
    key.name: frozenset(key.panes) for key in KEYS if key.panes
}

#: How the help and the palette write a Textual key name.
_DISPLAY = {
    "question_mark": "?",
    "colon": ":",
    "slash": "/",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "pageup": "pgup",
    "pagedown": "pgdn",
}


def display(key: Key) -> str:
    """How the help and the palette write ``key`` (its first name only)."""
    first = key.names[0]
    return _DISPLAY.get(first, first)


def in_offer_order() -> list[Key]:
    """The table with the keys of some panes first: the footer and the palette start
    with what the pane on show offers, then what every table and every pane has."""
    return sorted(KEYS, key=lambda key: not key.of_some_panes)


def bindings(scope: Scope) -> list[BindingType]:
    """The Textual bindings of the app (``"app"``) or of a pane table (``"table"``)."""
    bound: list[BindingType] = [
        Binding(key.key, key.action, key.label, show=key.footer, priority=key.priority)
        for key in in_offer_order()
        if key.scope == scope
    ]
    return bound


def allowed(action: str, pane: str, readonly: bool) -> bool:
    """Whether ``action`` (a name, no parameters) may run in ``pane``."""
    if readonly and action in MUTATIONS:
        return False
    panes = ACTION_PANES.get(action)
    return panes is None or pane in panes


def asks_for_change(key_name: str, pane: str) -> bool:
    """Whether pressing ``key_name`` in ``pane`` asks for a change (for the read-only notice)."""
    return any(key.mutates and key_name in key.names and key.applies(pane) for key in KEYS)


@dataclass(frozen=True)
class HelpLine:
    """One line of the help screen: keys, what they do, and whether that is a change."""

    keys: str
    does: str
    mutates: bool


@dataclass(frozen=True)
class HelpSection:
    """A titled block of the help screen: "Everywhere", "In tables", then one per pane
    with keys of its own."""

    title: str
    lines: tuple[HelpLine, ...]


def _keys_text(rows: tuple[Key, ...]) -> str:
    shown = [display(row) for row in rows]
    numbers = [int(text) for text in shown if text.isdigit()]
    if len(numbers) == len(shown) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return " ".join(shown)


def _lines(rows: list[Key], pane: str | None) -> tuple[HelpLine, ...]:
    grouped: dict[str, list[Key]] = {}
    order: list[str | Key] = []
    for row in rows:
        if row.group is None:
            order.append(row)
        else:
            if row.group not in grouped:
                order.append(row.group)
            grouped.setdefault(row.group, []).append(row)
    lines = []
    for item in order:
        if isinstance(item, Key):
            members: tuple[Key, ...] = (item,)
            does = item.does_on(pane) if pane else item.does
        else:
            members, does = tuple(grouped[item]), item
        lines.append(HelpLine(_keys_text(members), does, any(m.mutates for m in members)))
    return tuple(lines)


#: The help's section of the keys every table has.
IN_TABLES = "In tables"


def help_sections() -> tuple[HelpSection, ...]:
    """The help screen: keys of every pane, of every table, then each pane's own keys."""
    sections = [
        HelpSection("Everywhere", _lines([k for k in KEYS if not k.panes], None)),
        HelpSection(IN_TABLES, _lines([k for k in KEYS if k.panes == TABLES], None)),
    ]
    for pane in PANES:
        rows = [key for key in KEYS if key.of_some_panes and pane in key.panes]
        if rows:
            sections.append(HelpSection(TITLES[pane], _lines(rows, pane)))
    return tuple(sections)


@dataclass(frozen=True)
class PaletteCommand:
    """A command the palette offers: its title, the action it runs and its help."""

    title: str
    action: str
    help: str
    #: The table's row it comes from.
    row: Key


def palette_commands(pane: str) -> list[PaletteCommand]:
    """Every palette command of the table, with its help for ``pane`` (before the app's
    check of what applies to the pane and of read-only mode)."""
    return [
        PaletteCommand(key.title, key.action, f"{display(key)}: {key.does_on(pane)}", key)
        for key in in_offer_order()
        if key.title is not None
    ]
