"""Listings and records that fit the terminal they are printed to.

On a terminal (or with ``COLUMNS`` set) a listing is a table as wide as the terminal, one
line per row: ids (job and schedule ids, worker and queue names) are shown whole, never
wrapped or cut; when the width is short the least important columns are left out (a line
under the table says which) and free text is shortened with an ellipsis. Printed to a pipe,
a listing is tab-separated rows under a header line, every column, nothing cut, for grep,
cut and awk (``awk -F'\\t'``).

A record (``naq job show``) is field-value lines the same way: a two-column table whose
long values wrap on a terminal, tab-separated lines in a pipe.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

Kind = Literal["id", "fixed", "text"]

#: Cells between two columns (one of padding on each side; the tables have no borders).
GAP = 2
#: Free text is not shortened below this many cells (or its header's width).
SHORTEST_TEXT = 12
#: Control characters (newlines and tabs included) would split a row's line or its fields.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Column:
    """One column of a listing.

    ``kind``: ``"id"`` cells are never cut and their column is never left out; ``"fixed"``
    cells (times, counts, states) are shown whole or not at all; ``"text"`` cells may be
    shortened with an ellipsis. ``priority``: when the width is short, columns with the
    lowest priority are left out first. ``style`` gives a cell's colour from its text.
    """

    header: str
    kind: Kind = "text"
    priority: int = 0
    justify: JustifyMethod = "left"
    style: Callable[[str], str] | None = None
    #: Which end of shortened text gives way: the right, or the left for a dotted path
    #: whose last part tells most (``…jobs:send_email``).
    cut: Literal["right", "left"] = "right"


def clean(cell: str) -> str:
    """A cell's text on one line: control characters (newlines, tabs) become spaces."""
    return _CONTROL.sub(" ", cell)


def output_width(console: Console) -> int | None:
    """The width to fit listings to: the terminal's (or ``COLUMNS``'), or None when the
    output goes to a pipe without ``COLUMNS`` (then nothing is fitted, wrapped or cut)."""
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console.width
    return None


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int | None]:
    """Each column's width in a table at most ``width`` cells wide; None for a column left out.

    Ids keep their full width even if that makes the table wider than ``width``.
    """
    natural = [
        max([cell_len(column.header), *(cell_len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]
    least = [
        min(natural[i], max(SHORTEST_TEXT, cell_len(column.header)))
        if column.kind == "text"
        else natural[i]
        for i, column in enumerate(columns)
    ]
    kept = list(range(len(columns)))

    def needed(columns_kept: list[int]) -> int:
        return sum(least[i] for i in columns_kept) + GAP * (len(columns_kept) - 1)

    by_priority = sorted(
        (i for i, column in enumerate(columns) if column.kind != "id"),
        key=lambda i: (columns[i].priority, -i),
    )
    for i in by_priority:
        if needed(kept) <= width:
            break
        kept.remove(i)
    # Leaving out a wide column can make room for a narrower, less important one.
    for i in reversed(by_priority):
        if i not in kept and needed(sorted([*kept, i])) <= width:
            kept = sorted([*kept, i])
    widths: list[int | None] = [least[i] if i in kept else None for i in range(len(columns))]
    spare = width - needed(kept)
    # Shortened text gets the room left, the most important column first.
    for i in sorted(kept, key=lambda i: -columns[i].priority):
        grow = min(spare, natural[i] - least[i])
        if grow > 0:
            widths[i] = least[i] + grow
            spare -= grow
    return widths


def shorten(text: str, width: int, cut: Literal["right", "left"] = "right") -> str:
    """``text`` in at most ``width`` cells, an ellipsis standing for what was cut."""
    if cell_len(text) <= width:
        return text
    if cut == "left":
        return "…" + _leading(text[::-1], width - 1)[::-1]
    return _leading(text, width - 1) + "…"


def _leading(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits in ``cells`` cells."""
    used = 0
    for end, char in enumerate(text):
        used += cell_len(char)
        if used > cells:
            return text[:end]
    return text


def print_listing(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    console: Console | None = None,
) -> None:
    """Print ``rows`` under ``columns``: fitted to the terminal, or tab-separated in a pipe."""
    console = console or Console()
    cells = [[clean(cell) for cell in row] for row in rows]
    width = output_width(console)
    if width is None:
        lines = ["\t".join(column.header for column in columns)]
        lines += ["\t".join(row) for row in cells]
        console.file.write("\n".join(lines) + "\n")
        return
    widths = fit(columns, cells, width)
    table = Table(title=title, box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    shown = [i for i, w in enumerate(widths) if w is not None]
    for i in shown:
        column = columns[i]
        table.add_column(column.header, width=widths[i], justify=column.justify, no_wrap=True)
    for row in cells:
        table.add_row(*(_cell(columns[i], row[i], widths[i] or 0) for i in shown))
    # A table wider than the terminal (ids too long for it) is printed whole: the terminal
    # may fold its lines for the eye, but each row stays one line for grep.
    table_width = sum(w for w in widths if w is not None) + GAP * (len(shown) - 1)
    _console_of(console, max(width, table_width)).print(table, highlight=False)
    left_out = [columns[i].header for i, w in enumerate(widths) if w is None]
    if left_out:
        note = f"(not shown at this width: {', '.join(left_out)}; see --json)"
        _console_of(console, width).print(note, style="dim", highlight=False, markup=False)


def print_record(fields: Sequence[tuple[str, str]], console: Console | None = None) -> None:
    """Print field-value pairs: a two-column table on a terminal (long values wrap at
    spaces, so ids in them stay whole), ``field<TAB>value`` lines in a pipe."""
    console = console or Console()
    width = output_width(console)
    if width is None:
        console.file.write("".join(f"{key}\t{clean(value)}\n" for key, value in fields))
        return
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in fields:
        table.add_row(key, Text(value))
    _console_of(console, width).print(table, highlight=False)


def _cell(column: Column, value: str, width: int) -> Text:
    # Text, not markup: a job's error or arguments may hold brackets.
    style = column.style(value) if column.style else ""
    return Text(shorten(value, width, column.cut), style=style)


def _console_of(console: Console, width: int) -> Console:
    """A console writing where ``console`` does, ``width`` cells wide."""
    if width == console.width:
        return console
    # Standard output is looked up at each write (as a default console does), not kept.
    file = None if console.file is sys.stdout else console.file
    return Console(file=file, width=width, force_terminal=console.is_terminal)
