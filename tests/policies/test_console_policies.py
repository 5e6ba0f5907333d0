"""The console shows the policies: "1 of 2" under four eyes, an escalation, a policy's decision by
``policy:<rule>``, and a deadline counting down — in the real Textual app (``App.run_test``)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from textual.pilot import Pilot

from hitl_tui import ConsoleApp

from .conftest import MachineFactory

POLICY = """
[deadlines]
sweep = false
[escalation]
levels = [{ assignees = ["oncall-2", "alice"], wait = 600 }]
[authorization]
four_eyes = ["critical"]
[[rules]]
id = "routine-search"
decision = "allow"
action = "web_search"
"""


def detail_text(app: ConsoleApp) -> str:
    """The detail pane's current content as plain text (whichever way the pane keeps it)."""
    pane = app.detail
    body = getattr(pane, "_body", None)
    renderable = body.content if body is not None else pane.renderable  # type: ignore[attr-defined]
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(renderable)
    return out.getvalue()


async def settle(pilot: Pilot[Any], app: ConsoleApp) -> None:
    await app.loaded.wait()
    for _ in range(3):
        await pilot.pause()
        for worker in list(app.workers):
            if not worker.is_finished and worker.group in ("decide", "detail"):
                await worker.wait()
        app._apply_batch()
        await pilot.pause()


async def until(pilot: Pilot[Any], app: ConsoleApp, predicate: Any, seconds: float = 15.0) -> None:
    """Settle until ``predicate()`` holds: on a loaded 2-core machine one round may not be enough."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await settle(pilot, app)


async def show(pilot: Pilot[Any], app: ConsoleApp, task_id: str) -> str:
    await settle(pilot, app)
    app.table.select(task_id)
    await settle(pilot, app)
    return detail_text(app)


async def test_console_shows_four_eyes_escalation_policy_and_countdown(configured: MachineFactory) -> None:
    m = configured(POLICY)
    await m.start_task("grant", agent="infra-guard")
    await m.request_approval("grant", "Grant admin role", severity="critical", timeout=3600)
    await m.approve("grant", actor="bob")
    await m.start_task("deploy", agent="deploy-pilot")
    await m.request_approval("deploy", "Deploy", severity="high", deadline=datetime.now(UTC) - timedelta(seconds=1))
    await m.expire("deploy")  # escalates to level 1
    await m.start_task("search", agent="research-1")
    await m.request_approval("search", "Search the web", severity="low", action="web_search", args={"q": "x"})
    # dwell is tested in tests/tui; advance off: this test reads the decided task's own detail
    app = ConsoleApp(m, actor="alice", clock=time.time, tick_interval=None, dwell=0, advance=False)
    async with app.run_test(size=(180, 50)) as pilot:
        grant = await show(pilot, app, "grant")
        assert "1 of 2 (four eyes) by bob" in grant
        assert app.table.cursor_row is not None and app.table.cursor_row.deadline is not None  # counts down
        deploy = await show(pilot, app, "deploy")
        assert "escalated" in deploy and "level 1 at" in deploy
        assert "oncall-2, alice" in deploy and "escalation:level-1" in deploy  # who may decide now; the history
        search = await show(pilot, app, "search")
        assert "Decision policy (approve) by policy:routine-search via policy" in search
        await show(pilot, app, "grant")
        await pilot.press("a")  # alice gives the second approval (critical: confirmed in a dialog)
        await pilot.pause()
        await pilot.click("#ok")
        await until(pilot, app, lambda: "2 of 2 (four eyes) by bob, alice" in detail_text(app))
    task = await m.get_task("grant")
    assert task is not None and [a.actor.id for a in task.approvals] == ["bob", "alice"]


async def test_deadline_and_urgent_request_toasts_render(configured: MachineFactory) -> None:
    """The demo's policies make deadline toasts common; a toast must be drawable."""
    m = configured(POLICY)
    app = ConsoleApp(m, actor="alice", clock=time.time, tick_interval=None, dwell=0)  # dwell: tests/tui
    async with app.run_test(size=(180, 50)) as pilot:
        await settle(pilot, app)
        await m.start_task("hot", agent="infra-guard")
        await m.request_approval("hot", "Rotate the [bold]key[/bold]", severity="critical", timeout=10)
        await settle(pilot, app)
        app._tick()
        await pilot.pause(0.1)
        assert [n.title for n in app._notifications] == ["critical task waiting", "deadline"]
        # Textual's Toast draws Content(message) when markup=False: only a str works (a rich Text
        # raised AttributeError when the toast was drawn, which killed `hitl demo`)
        assert all(type(n.message) is str for n in app._notifications)
        assert "Rotate the [bold]key[/bold]" in next(iter(app._notifications)).message  # literal, not markup
