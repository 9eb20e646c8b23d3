"""Sparklines from Textual's own Sparkline, with bars measured from zero.

Textual's Sparkline scales its bars from the lowest to the highest value it is given,
so a rate moving from 15.0 to 15.5 jobs/s would fill the whole height. The TUI's charts
start at zero instead: :func:`from_zero` resamples the values to the chart's width with
a zero in front (drawn as the lowest bar, a baseline at the left edge). :func:`spark`
draws one as text, for the cells of a table; :class:`ZeroSparkline` is the widget.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

from rich.color import Color
from rich.console import Console
from rich.text import Text
from textual.renderables.sparkline import Sparkline
from textual.widgets import Sparkline as SparklineWidget

#: tone -> (colour of the lowest bars, colour of the highest), for dark and light themes.
TONES: dict[str, tuple[Color, Color]] = {
    "blue": (Color.parse("#2f5f8a"), Color.parse("#5fb0ff")),
    "green": (Color.parse("#2e6b34"), Color.parse("#6fd37a")),
    "yellow": (Color.parse("#7a6420"), Color.parse("#ffd54f")),
    "red": (Color.parse("#7a2a2a"), Color.parse("#ff5c5c")),
}
#: Renders sparklines into segments; never writes anywhere.
_CONSOLE = Console(file=io.StringIO(), color_system="truecolor", width=200, legacy_windows=False)


def from_zero(values: Sequence[float], width: int) -> list[float]:
    """``values`` as ``width`` bars measured from zero: a zero, then ``width - 1`` buckets
    (each the largest value it covers), oldest first."""
    if width <= 1:
        return [0.0] * max(width, 0)
    buckets = width - 1
    if not values:
        return [0.0] * width
    step = Fraction(len(values), buckets)
    out = [0.0]
    for bucket in range(buckets):
        start, end = int(step * bucket), int(step * (bucket + 1))
        part = values[start : max(end, start + 1)]
        out.append(float(max(part)) if part else 0.0)
    return out


def spark(values: Sequence[float], width: int, tone: str = "blue") -> Text:
    """A one-line sparkline of ``values`` as ``width`` cells of text."""
    low, high = TONES[tone]
    chart = Sparkline(from_zero(values, width), width=width, min_color=low, max_color=high)
    text = Text(end="")
    for segment in _CONSOLE.render(chart, _CONSOLE.options.update(width=width, height=1)):
        if segment.text and not segment.control:
            text.append(segment.text, segment.style)
    return text


class ZeroSparkline(SparklineWidget):
    """Textual's Sparkline widget with its bars measured from zero, refit to its width."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._values: tuple[float, ...] = ()

    def plot(self, values: Sequence[float]) -> None:
        """Show ``values`` (oldest first)."""
        self._values = tuple(values)
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        self.data = from_zero(self._values, max(1, self.size.width))
