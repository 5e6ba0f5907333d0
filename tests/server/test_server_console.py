"""The console works through the server unchanged: it lists, follows and decides as the OS user."""

from __future__ import annotations

import pytest

from hitl_core import HITLStateMachine, TaskState

from .conftest import ServerFactory

pytestmark = pytest.mark.processes


async def test_console_decides_through_the_server_as_the_os_user(start_server: ServerFactory) -> None:
    from hitl_tui.app import ConsoleApp

    server = start_server()
    agent = HITLStateMachine(server.unix_url)
    try:
        await agent.start_task("c1")
        await agent.request_approval("c1", "deploy prod", severity="high")
        console_machine = HITLStateMachine(server.unix_url, config=True)  # a local hitl.toml has no say
        app = ConsoleApp(console_machine, actor=None, readonly=False, follow=True)
        async with app.run_test() as pilot:
            for _ in range(600):  # the row arrives from the server
                await pilot.pause(0.05)
                if "c1" in app.view.rows:
                    break
            for _ in range(120):
                # Pressed again until it takes: the console ignores a deciding key until the task
                # has been on screen for its dwell time (the detail comes from the server), which a
                # loaded machine stretches. A refused press decides nothing.
                await pilot.pause(0.5)
                await pilot.press("a")
                await pilot.pause(0.5)
                task = await agent.get_task("c1")
                if task is not None and task.state is TaskState.APPROVED:
                    break
        assert task is not None and task.state is TaskState.APPROVED
        assert task.decision is not None and task.decision.actor.id == "root"
        assert task.decision.actor.source == "unix"
    finally:
        await agent.close()
