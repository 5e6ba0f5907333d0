"""``FilterInput``: the filter box (esc clears it)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class FilterInput(Input):
    BINDINGS = [Binding("escape", "app.clear_filter", "Clear filter", id="filter.clear")]
