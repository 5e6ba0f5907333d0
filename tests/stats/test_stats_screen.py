"""The console's stats screen: opened by key and palette, live from the console's stream, ids
inert, and pinned by a snapshot (frozen clock: events are stamped by the ``clock`` fixture and
the console reads ``NOW``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from hitl_core import HITLStateMachine
from hitl_tui import ConsoleApp
from hitl_tui.stats_screen import StatsScreen

from .conftest import NOW_US, EventClock, forge_decider

NOW = NOW_US / 1_000_000
SIZE = (150, 48)
HOSTILE = "mallory\x1b[2J\x07\u202e"


def screen_text(app: ConsoleApp) -> str:
    """What the terminal shows, as the SVG export spells it (spaces as &#160;)."""
    return app.export_screenshot().replace("&#160;", " ")


def frozen() -> float:
    return NOW


async def fleet(machine: HITLStateMachine, clock: EventClock) -> None:
    """A queue over the last hour: requests by severity, people deciding at different speeds."""
    plan = [
        # task, severity, asked (s ago), decided (s ago) or None, by
        ("deploy-01", "critical", 3500, 2900, "alice"),
        ("deploy-02", "critical", 3000, None, None),
        ("refund-03", "high", 2800, 2700, "bob"),
        ("refund-04", "high", 2500, 2499, "mallory"),
        ("mail-05", "low", 2400, 2390, "bob"),
        ("mail-06", "low", 2000, 1999, "mallory"),
        ("mail-07", "medium", 1500, 1400, "alice"),
        ("rows-08", "medium", 1200, None, None),
        ("rows-09", "high", 900, 600, "carol"),
        ("mail-10", "low", 600, None, None),
        ("mail-11", "medium", 300, None, None),
        ("deploy-12", "critical", 120, None, None),
    ]
    events: list[tuple[float, str, Any]] = []
    for task_id, severity, asked, decided, who in plan:
        events.append((asked, "ask", (task_id, severity)))
        if decided is not None:
            events.append((decided, "decide", (task_id, who)))
    for ago, kind, detail in sorted(events, key=lambda e: -e[0]):
        clock.set(ago)
        if kind == "ask":
            task_id, severity = detail
            await machine.start_task(task_id, agent="ops-bot")
            await machine.request_approval(task_id, f"{task_id}: go ahead?", severity=severity, args={"n": 1})
        else:
            task_id, who = detail
            if task_id.startswith("refund-03"):
                await machine.reject(task_id, who, "wrong amount")
            else:
                await machine.approve(task_id, who)
    # An operator id with control characters reaches the trail only by a hand edit (the API refuses it).
    for task_id in ("refund-04", "mail-06"):
        forge_decider(machine.store, task_id, HOSTILE)


def make_app(machine: HITLStateMachine, clock: EventClock) -> ConsoleApp:
    return ConsoleApp(
        machine,
        actor="alice",
        clock=frozen,
        tick_interval=None,
        detail_delay=0,
        before_load=lambda: fleet(machine, clock),
    )


async def settle(pilot: Pilot[Any], app: ConsoleApp) -> None:
    """Wait until the console's own loading work (rows, detail pane) has reached the screen."""
    await app.loaded.wait()
    for _ in range(3):
        await pilot.pause()
        for worker in list(app.workers):
            if worker.group in ("detail", "stats") and not worker.is_finished:
                await worker.wait()
        app._apply_batch()
        app._follow_selection()
        await pilot.pause()


async def open_stats(pilot: Pilot[Any], app: ConsoleApp) -> StatsScreen:
    await settle(pilot, app)
    await pilot.press("t")
    deadline = time.monotonic() + 60
    while not (isinstance(app.screen, StatsScreen) and app.screen.stats is not None):
        assert time.monotonic() < deadline, "the stats screen did not load"
        await pilot.pause(0.05)
    await settle(pilot, app)
    return app.screen


@pytest.fixture
def machine() -> HITLStateMachine:
    return HITLStateMachine("memory://", load_entrypoints=False)


async def test_t_opens_the_stats_screen_with_the_figures(machine: HITLStateMachine, clock: EventClock) -> None:
    app = make_app(machine, clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_stats(pilot, app)
        stats = screen.stats
        assert stats is not None
        assert stats.waiting == 5 and stats.decisions == 7
        assert stats.waiting_by_severity == {"low": 1, "medium": 2, "high": 0, "critical": 2}
        assert [r.actor for r in stats.rubber_stamps] == [HOSTILE, HOSTILE]
        spark = screen.query_one(Sparkline)
        assert list(spark.data or [])[-1] == 5.0
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, StatsScreen)


async def test_the_palette_offers_view_stats(machine: HITLStateMachine, clock: EventClock) -> None:
    from hitl_tui.app import ConsoleCommands

    assert ("view: stats", "stats") in [(name, action) for name, action, _ in ConsoleCommands.COMMANDS]
    app = make_app(machine, clock)
    async with app.run_test(size=SIZE) as pilot:
        await app.loaded.wait()
        await app.run_action("stats")
        deadline = time.monotonic() + 60
        while not (isinstance(app.screen, StatsScreen) and app.screen.stats is not None):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)


async def test_the_stats_screen_follows_decisions_live(machine: HITLStateMachine, clock: EventClock) -> None:
    app = make_app(machine, clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_stats(pilot, app)
        clock.set(30)
        await machine.approve("deploy-12", "dave")
        clock.set(20)
        await machine.start_task("new-13", agent="ops-bot")
        await machine.request_approval("new-13", "more?", severity="low")
        deadline = time.monotonic() + 60
        while True:
            stats = screen.stats
            assert stats is not None
            if stats.decisions == 8 and stats.waiting == 5 and stats.waiting_by_severity["critical"] == 1:
                break
            assert time.monotonic() < deadline, stats.to_dict()
            await pilot.pause(0.1)
        assert any(o.actor == "dave" for o in stats.operators)


async def test_an_operator_id_with_control_characters_is_shown_inert_on_the_screen(
    machine: HITLStateMachine, clock: EventClock
) -> None:
    app = make_app(machine, clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_stats(pilot, app)
        people = screen.query_one("#stats-people", Static)
        rendered = screen_text(app)
        assert "mallory\\x1b[2J\\x07\\u202e" in rendered
        assert "\x1b[2J" not in rendered and "\u202e" not in rendered
        assert people is not None


def test_stats_screen_snapshot(snap_compare: Any, machine: HITLStateMachine, clock: EventClock) -> None:
    app = make_app(machine, clock)

    async def ready(pilot: Pilot[Any]) -> None:
        await open_stats(pilot, app)
        await pilot.pause()
        await asyncio.sleep(0)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


async def test_a_store_that_cannot_be_read_is_reported_on_the_screen_and_the_console_stays_up(
    tmp_path: Any, clock: EventClock
) -> None:
    """The events table was dropped by hand after the console started: the screen says so."""
    import sqlite3

    path = tmp_path / "broken.db"
    machine = HITLStateMachine(f"sqlite:///{path}", load_entrypoints=False)
    app = ConsoleApp(machine, actor="alice", clock=frozen, tick_interval=None, detail_delay=0, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.loaded.wait()
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE events")
        conn.commit()
        conn.close()
        await pilot.press("t")
        deadline = time.monotonic() + 60
        while "could not load the figures: StoreError" not in screen_text(app):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        assert isinstance(app.screen, StatsScreen) and app.screen.stats is None
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, StatsScreen)
