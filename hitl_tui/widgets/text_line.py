"""``TextLine``: a line of text that repaints itself only (no new layout)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget


class TextLine(Widget):
    """A fixed-height line of text. Unlike ``Static.update`` (which asks for a new layout of
    the whole screen), ``update`` here only repaints this widget: the header and the flash line
    change several times a second under load."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text: Text = Text()

    def update(self, text: Text) -> None:
        self.text = text
        self.refresh()

    def render(self) -> Text:
        return self.text
