"""The console uses only the machine's public API, so it runs unchanged against ``hitl serve``.

Two checks: a static one (no module of ``hitl_tui`` reads an attribute named ``store`` or imports
a store's row types), and a live one that also catches a dynamic read (a ``RemoteMachine`` whose
``store`` is a tripwire: the console loads, follows, shows the detail and history, and decides
through the server without touching it).
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine, TaskState
from tests.server.conftest import ServerFactory, start_server  # noqa: F401 - the fixture

from .helpers import make_app, poll, waiting

PACKAGE = Path(__file__).resolve().parents[2] / "hitl_tui"

#: Modules allowed to read a store, and why: none (the stats screen asks ``machine.stats``).
STORE_READERS: dict[str, str] = {}


def _store_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "store":
            found.append(f"{path.name}:{node.lineno}: .store")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith(("hitl_core.records", "hitl_core.stores"))
        ):
            found.append(f"{path.name}:{node.lineno}: from {node.module} import …")
    return found


def test_no_console_module_reads_the_machines_store() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 10, "the walk found the package"
    uses = [use for path in modules if path.name not in STORE_READERS for use in _store_uses(path)]
    assert uses == []


def test_the_store_check_catches_a_store_read(tmp_path: Path) -> None:
    """The check itself: a module that reads ``machine.store`` is named, line and all."""
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from hitl_core.records import TaskRecord\nasync def f(m):\n    return await m.store.query()\n")
    assert _store_uses(sneaky) == ["sneaky.py:1: from hitl_core.records import …", "sneaky.py:3: .store"]


async def ask(agent: Any, task_id: str, reason: str) -> None:
    """A request as the OS user (the server names the agent: no impersonation)."""
    await agent.start_task(task_id)
    await agent.request_approval(task_id, reason, severity="high", action="send_email", args={"to": "ops@acme.example"})


class Tripwire:
    """Stands in for ``RemoteMachine.store``: any use of it fails the test."""

    def __init__(self) -> None:
        self.touched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.touched.append(name)
        raise AssertionError(f"the console read machine.store.{name}")


@pytest.mark.processes
async def test_console_runs_on_a_remote_machine_without_its_store(start_server: ServerFactory) -> None:  # noqa: F811
    server = start_server()
    agent = HITLStateMachine(server.unix_url)
    try:
        await ask(agent, "r1", "Send the quote")
        remote = HITLStateMachine(server.unix_url)
        tripwire = Tripwire()
        remote.store = tripwire
        app = make_app(remote, actor="root", follow=True)
        async with app.run_test(size=(160, 40)) as pilot:
            await poll(pilot, lambda: "r1" in app.view.rows, 60)
            assert app.machine.url == server.unix_url
            app.table.select("r1")
            await poll(pilot, lambda: app.detail.task_id == "r1", 60)
            detail = "".join(strip.text for strip in app.detail._strips)
            assert "request_approval" in detail, "the history comes from machine.events"
            # another process's new request reaches the console through machine.follow
            await ask(agent, "r2", "Refund order 88121")
            await poll(pilot, lambda: "r2" in app.view.rows and app.view.rows["r2"].waiting, 60)
            await poll(pilot, app.ready_to_decide, 30)
            app.table.select("r1")
            await poll(pilot, lambda: app.detail.task_id == "r1" and app.ready_to_decide(), 30)
            await pilot.press("a")
            await poll(pilot, lambda: app.view.rows["r1"].state is TaskState.APPROVED, 60)
            await pilot.press("h")
            await poll(pilot, lambda: type(app.screen).__name__ == "HistoryScreen", 30)
            await pilot.press("escape")
            await poll(pilot, lambda: type(app.screen).__name__ != "HistoryScreen", 30)
            # the stats view's figures come through machine.stats: the server's API, not the store
            await pilot.press("t")
            await poll(pilot, lambda: getattr(app.screen, "fold", None) is not None, 60)
            figures = app.screen.fold.snapshot()  # type: ignore[attr-defined]
            assert figures.waiting == 1 and figures.oldest_waiting_task == "r2"
            assert figures.decisions == 1 and figures.by_kind["person"] == 1, figures.by_kind
        assert tripwire.touched == []
        task = await agent.get_task("r1")
        assert task is not None and task.decision is not None and task.decision.actor.source == "unix"
        await remote.close()
    finally:
        await agent.close()


async def test_machine_follow_yields_events_after_a_sequence_number(machine: HITLStateMachine) -> None:
    """``follow`` and ``last_seq``: what the console reads instead of the store's own."""
    await machine.open()
    await waiting(machine, "f1")
    start = await machine.last_seq()
    assert start == 2
    got: list[tuple[int, str]] = []

    async def read() -> None:
        async for event in machine.follow(start):
            got.append((event.seq, event.action))
            if len(got) == 2:
                return

    reader = asyncio.create_task(read())
    await machine.approve("f1", "alice")
    await machine.resume("f1")
    await asyncio.wait_for(reader, 30)
    assert got == [(3, "approve"), (4, "resume")]
    assert machine.url == "memory://"
    assert machine.problem is None
