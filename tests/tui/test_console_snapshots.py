"""Snapshot tests (pytest-textual-snapshot): what the operator sees, pinned.

Clock and event times are frozen (see conftest); interrupt ids are never drawn. Update the
snapshots deliberately with ``pytest tests/tui --snapshot-update`` and look at the report.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from hitl_core import HITLStateMachine

from .helpers import HOSTILE_REASON, make_app, mixed_fleet, select, settle, waiting

SIZE = (160, 40)

pytestmark = pytest.mark.usefixtures("frozen_events")


def fleet_app(machine: HITLStateMachine, **kwargs: Any) -> Any:
    return make_app(machine, before_load=lambda: mixed_fleet(machine), **kwargs)


def test_main_screen_with_a_mixed_fleet(snap_compare: Any, machine: HITLStateMachine) -> None:
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


@pytest.mark.parametrize("theme", ["textual-light", "solarized-light"])
def test_main_screen_under_a_light_theme(snap_compare: Any, machine: HITLStateMachine, theme: str) -> None:
    """Every part follows the theme: table, header, detail pane, summary, flash and footer."""
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        app.theme = theme
        await select(pilot, app, "deploy-0007")
        app.set_flash("✗ not approved: the cursor moved to deploy-0007 just now; read it, then press again", "bold red")
        await settle(pilot, app)
        assert not app.scheme.dark

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_detail_pane_of_a_critical_task(snap_compare: Any, machine: HITLStateMachine) -> None:
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await select(pilot, app, "deploy-0007")
        assert app.detail.task_id == "deploy-0007"

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_reject_modal(snap_compare: Any, machine: HITLStateMachine) -> None:
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await select(pilot, app, "billing-0003")
        await pilot.press("r", *"wrong order")
        await pilot.pause()
        app.screen.query_one("#reason").cursor_blink = False  # type: ignore[attr-defined]
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_edit_modal_with_a_diff(snap_compare: Any, machine: HITLStateMachine) -> None:
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await select(pilot, app, "billing-0003")
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#args", TextArea).text = '{\n  "order_id": 88121,\n  "amount": 99.0\n}'
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(160, 45), run_before=ready)


def test_help_screen(snap_compare: Any, machine: HITLStateMachine) -> None:
    app = make_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await settle(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(160, 50), run_before=ready)


def test_reason_with_rich_markup_and_an_escape_sequence_is_shown_literally(
    snap_compare: Any, machine: HITLStateMachine
) -> None:
    async def hostile() -> None:
        await waiting(
            machine,
            "evil-0001",
            HOSTILE_REASON,
            agent="[blink]agent[/blink]\x1b]0;t\x07",
            context={"note": "[red]x[/red]\x1b[5m", "bidi": "abc\u202edef"},
            older_version=True,
        )
        await waiting(machine, "plain-0002", "An ordinary request")

    app = make_app(machine, before_load=hostile)

    async def ready(pilot: Pilot[Any]) -> None:
        await select(pilot, app, "evil-0001")
        row = app.view.rows["evil-0001"]
        line = app.table._render_row(row, 300, False, app.clock()).text
        assert "[bold red]URGENT[/]" in line and "\\x1b[2J" in line and "\x1b" not in line

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


#: The sizes an operator was seen using: a laptop split, a wide monitor, and the 80x24 fallback.
SIZES = [(80, 24), (120, 40), (200, 50)]


async def _open_reject(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "billing-0003")
    await pilot.press("r", *"wrong order")


async def _open_answer(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "crm-0009")
    await pilot.press("m", *"eu-west")


async def _open_pause(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "ops-0004")
    await pilot.press("p")


async def _open_edit(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "billing-0003")
    await pilot.press("e")
    await pilot.pause()
    app.screen.query_one("#args", TextArea).text = '{\n  "order_id": 88121,\n  "amount": 99.0\n}'
    await pilot.pause()
    await pilot.press("ctrl+s")


async def _open_critical_confirm(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "deploy-0007")
    await pilot.press("a")


async def _main(pilot: Pilot[Any], app: Any) -> None:
    await select(pilot, app, "deploy-0007")


SCREENS = {
    "main": _main,
    "reject": _open_reject,
    "answer": _open_answer,
    "pause": _open_pause,
    "edit": _open_edit,
    "critical_confirm": _open_critical_confirm,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_screen_fits(snap_compare: Any, machine: HITLStateMachine, screen: str, size: tuple[int, int]) -> None:
    app = fleet_app(machine)

    async def ready(pilot: Pilot[Any]) -> None:
        await SCREENS[screen](pilot, app)
        await settle(pilot, app)
        for box in app.screen.query("Input, TextArea"):
            box.cursor_blink = False  # type: ignore[attr-defined]  # a blinking cursor differs between runs
        await settle(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize(
    ("doc", "snapshot"),
    [
        ("console.svg", "test_every_screen_fits[main-200x50].svg"),
        ("console.80x24.svg", "test_every_screen_fits[main-80x24].svg"),
        ("console.light.svg", "test_main_screen_under_a_light_theme[textual-light].svg"),
    ],
)
def test_readme_screenshots_are_the_snapshots(doc: str, snapshot: str) -> None:
    """The README shows what the snapshot tests pin (copy them over after --snapshot-update)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    shown = (root / "docs" / doc).read_bytes()
    pinned = (Path(__file__).parent / "__snapshots__" / "test_console_snapshots" / snapshot).read_bytes()
    assert shown == pinned
