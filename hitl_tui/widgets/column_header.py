"""``ColumnHeader``: the task table's column names, with the table's fixed widths."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from ..model import FleetView
from ..theme import scheme_of
from .task_table import column_header


class ColumnHeader(Widget):
    """The table's column names, drawn with the same fixed widths as its rows."""

    DEFAULT_CSS = "ColumnHeader { height: 1; }"

    def __init__(self, view: FleetView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view

    def render_line(self, y: int) -> Strip:
        base = self.rich_style  # the theme's background (see TaskTable.render_line)
        if y:
            return Strip([Segment(" " * self.size.width, base)])
        strip = column_header(self.size.width, self.view.sort_column, self.view.sort_reverse, scheme_of(self.app))
        return strip.apply_style(base)
