"""Helpers for the console tests (fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from textual.pilot import Pilot

from hitl_core import HITLStateMachine
from hitl_tui import ConsoleApp

#: 2027-01-15 08:00:00 UTC: "now" for the console in every test.
FROZEN_NOW = 1_800_000_000.0


def frozen_clock() -> float:
    return FROZEN_NOW


def deadline_in(seconds: float) -> datetime:
    return datetime.fromtimestamp(FROZEN_NOW, UTC) + timedelta(seconds=seconds)


async def waiting(machine: HITLStateMachine, task_id: str, reason: str = "Send the quote", *,
                  severity: str = "medium", agent: str = "billing-bot", framework: str = "langgraph",
                  step: str = "draft", action: str | None = "send_email",
                  args: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """A task that has asked for approval (the usual case the operator sees)."""
    await machine.start_task(task_id, agent=agent, framework=framework, step=step)
    await machine.request_approval(task_id, reason, severity=severity, action=action,
                                   args=args if args is not None else {"to": "ops@acme.example", "cc": []},
                                   **kwargs)


def make_app(machine: HITLStateMachine, **kwargs: Any) -> ConsoleApp:
    kwargs.setdefault("actor", "alice")
    kwargs.setdefault("clock", frozen_clock)
    kwargs.setdefault("tick_interval", None)
    return ConsoleApp(machine, **kwargs)


async def settle(pilot: Pilot[Any], app: ConsoleApp) -> None:
    """Wait until everything the console was asked to do has reached the screen."""
    await app.loaded.wait()
    for _ in range(3):
        await pilot.pause()
        for worker in list(app.workers):
            if worker.group in ("decide", "detail", "history") and not worker.is_finished:
                await worker.wait()
        app._flush()
        await pilot.pause()


async def select(pilot: Pilot[Any], app: ConsoleApp, task_id: str) -> None:
    await settle(pilot, app)
    app.table.select(task_id)
    await settle(pilot, app)
