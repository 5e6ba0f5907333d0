"""The Textual shims (``hitl_tui.textual_compat``): the version range they were checked against,
and each shim doing its job on the real Textual installed."""

from __future__ import annotations

from importlib.metadata import version

from textual import events
from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hitl_core import HITLStateMachine
from hitl_tui.textual_compat import TEXTUAL_CHECKED, KeyPreview, set_virtual_size, textual_version

from .helpers import make_app, poll, settle, waiting


def test_installed_textual_is_in_the_range_the_shims_were_checked_against() -> None:
    first, last = TEXTUAL_CHECKED
    assert first <= textual_version() < last, (
        f"Textual {version('textual')} is outside {first}..{last}: check every shim in "
        "hitl_tui/textual_compat.py against it, then widen TEXTUAL_CHECKED"
    )


class Lines(ScrollView):
    DEFAULT_CSS = "Lines { overflow-y: scroll; height: 10; }"

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width)


class PreviewApp(KeyPreview, App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.pressed: list[str] = []
        self.held: list[events.Key] = []

    def compose(self) -> ComposeResult:
        yield Lines()

    async def preview_key(self, event: events.Key) -> bool:
        if event.key == "x":
            self.held.append(event)
            return True
        return False

    def on_key(self, event: events.Key) -> None:
        self.pressed.append(event.key)


async def test_key_preview_holds_a_key_and_delivers_it_later() -> None:
    app = PreviewApp()
    async with app.run_test() as pilot:
        await pilot.press("a", "x", "b")
        await pilot.pause()
        assert app.pressed == ["a", "b"] and [k.key for k in app.held] == ["x"]
        await app.deliver_key(app.held.pop())
        await pilot.pause()
        assert app.pressed == ["a", "b", "x"]


async def test_set_virtual_size_moves_the_scrollbar_and_keeps_the_view_in_range() -> None:
    app = PreviewApp()
    async with app.run_test() as pilot:
        lines = app.query_one(Lines)
        set_virtual_size(lines, Size(20, 500))
        await pilot.pause()
        assert lines.virtual_size == Size(20, 500) and lines.max_scroll_y > 0
        lines.scroll_to(y=400, animate=False, immediate=True)
        set_virtual_size(lines, Size(20, 12))
        await pilot.pause()
        assert lines.scroll_y <= max(12 - lines.scrollable_content_region.height, 0)


async def test_notifications_are_recorded_but_never_drawn_as_toasts(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:  # as a terminal runs it
        await settle(pilot, app)
        app.notify("critical task waiting", title="critical task waiting", severity="error")
        await pilot.pause()
        assert [n.title for n in app._notifications] == ["critical task waiting"]
        toasts = list(app.screen.query("Toast"))
        assert toasts, "Textual made a toast for it"
        assert all(toast.region.area == 0 for toast in toasts), "toasts would cover the table"


async def test_the_footer_is_checked_again_when_a_dialog_closes(machine: HITLStateMachine) -> None:
    await waiting(machine, "t1")
    app = make_app(machine)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        calls: list[int] = []
        original = app.footer_after_dialog
        app.footer_after_dialog = lambda: (calls.append(1), original())  # type: ignore[method-assign]
        await pilot.press("question_mark")
        await poll(pilot, lambda: app.modal_open)
        await pilot.press("escape")
        await poll(pilot, lambda: not app.modal_open and calls != [])
