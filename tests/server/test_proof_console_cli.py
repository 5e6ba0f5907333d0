"""``hitl console --store hitl+unix://…`` (the README's tour) points the real console at the server.

The command line is parsed and run by ``hitl_core.cli.main`` as the ``hitl`` command runs it; only
the last step differs: ``App.run()`` (which needs a terminal) is replaced by the same app under
Textual's ``run_test`` Pilot, which presses ``a`` once the agent's task shows up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState
from hitl_core.cli import main

from .conftest import ServerFactory

pytestmark = pytest.mark.processes


def test_hitl_console_store_flag_decides_through_the_server(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hitl_tui.app import ConsoleApp

    server = start_server()

    async def ask() -> None:
        async with HITLStateMachine(server.unix_url, load_entrypoints=False) as agent:
            await agent.start_task("tour-1")
            await agent.request_approval("tour-1", "deploy v1.2.3", severity="high")

    asyncio.run(ask())
    driven: dict[str, Any] = {}

    def run_under_pilot(app: ConsoleApp, *args: object, **kwargs: object) -> None:
        driven["machine"] = type(app.machine).__name__

        async def drive() -> None:
            async with app.run_test() as pilot:
                for _ in range(1200):  # the row arrives from the server
                    await pilot.pause(0.05)
                    if "tour-1" in app.view.rows:
                        break
                for _ in range(120):
                    # Pressed again until it takes: the console ignores a deciding key until the
                    # task has been on screen for its dwell time, which a loaded machine stretches.
                    await pilot.pause(0.5)
                    await pilot.press("a")
                    await pilot.pause(0.5)
                    task = await app.machine.get_task("tour-1")
                    if task is not None and task.state is TaskState.APPROVED:
                        break

        asyncio.run(drive())

    monkeypatch.setattr(ConsoleApp, "run", run_under_pilot)
    assert main(["console", "--store", server.unix_url]) == 0
    assert driven["machine"] == "RemoteMachine"

    async def read() -> Any:
        async with HITLStateMachine(server.unix_url, load_entrypoints=False) as operator:
            return await operator.get_task("tour-1")

    task = asyncio.run(read())
    assert task.state is TaskState.APPROVED
    assert task.decision.actor.id == "root" and task.decision.actor.source == "unix"
