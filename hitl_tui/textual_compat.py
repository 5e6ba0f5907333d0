"""Everything the console needs from Textual beyond its public API, in one place.

Checked against ``TEXTUAL_CHECKED`` (the ``tui`` extra pins Textual to it);
``tests/tui/test_textual_compat.py`` pins that range and exercises each shim, so a Textual
upgrade that breaks one fails there, by name, rather than somewhere in the console.

What is here, and why there is no public way (as of Textual 8.2):

- ``KeyPreview``: a key read from the terminal must be seen *before* Textual routes it to the
  widget focused at that moment (keys typed after ``/`` or ``r`` belong to the input that is about
  to open, not to the table). Textual has no public pre-dispatch hook for keys, so the app
  overrides ``App.on_event`` for ``Key`` events only; everything else goes on unchanged.
- ``set_virtual_size``: a Line API widget whose row count changes several times a second must not
  ask for a new layout of the whole screen each time (assigning ``virtual_size`` does). It sets
  the reactive without its watchers and updates the scrollbars through ``_scroll_update``.

Replaced by public API (no shim): toasts are hidden by CSS (``Toast, ToastHolder { display:
none; }``) rather than ``App._disable_notifications``; the footer is refreshed after a dialog
closes by the main screen's ``ScreenResume`` (``App.get_default_screen``) rather than a
``pop_screen`` override; tests send keys with ``App.post_message`` rather than through the
driver, and let the real batch timer run instead of calling the console's ``_apply_batch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events
from textual.geometry import Size

if TYPE_CHECKING:
    from textual.scroll_view import ScrollView

#: The Textual versions these shims were checked against: [first, last) as (major, minor).
TEXTUAL_CHECKED = ((8, 2), (8, 3))


def textual_version() -> tuple[int, int]:
    from importlib.metadata import version

    major, minor, *_ = version("textual").split(".")
    return int(major), int(minor)


class KeyPreview:
    """Mix into an ``App`` (before ``App``): ``preview_key`` sees every key read from the terminal
    first; when it returns True the key is held (or dropped) instead of being dispatched.
    ``deliver_key`` dispatches a held key later, as Textual would have."""

    async def preview_key(self, event: events.Key) -> bool:
        return False

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and await self.preview_key(event):
            return
        await super().on_event(event)  # type: ignore[misc]

    async def deliver_key(self, event: events.Key) -> None:
        await super().on_event(event)  # type: ignore[misc]


def set_virtual_size(widget: ScrollView, size: Size) -> None:
    """Change a Line API widget's virtual size without asking the screen for a new layout.

    With the vertical scrollbar always shown (``overflow-y: scroll``) nothing outside the widget
    depends on its virtual size, so only the scrollbars and the widget are updated.
    """
    if size == widget.virtual_size:
        return
    widget.set_reactive(type(widget).virtual_size, size)  # type: ignore[arg-type]
    scroll_update: Any = widget._scroll_update
    scroll_update(size)
    max_y = max(size.height - widget.scrollable_content_region.height, 0)
    if widget.scroll_y > max_y:
        widget.scroll_to(y=max_y, animate=False, immediate=True)
    widget.refresh()
