"""Helpers for the smolagents guard's tests: real smolagents agents on an offline model, a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hitl_smolagents import ScriptedModel
from smolagents import CodeAgent, ToolCallingAgent, tool
from smolagents.monitoring import LogLevel

from hitl_core import HITLStateMachine, TaskContext

DEADLINE = 90.0  # seconds: generous, the machine is shared and loaded

#: (to, amount) of every transfer that really ran, in order
TRANSFERS: list[tuple[str, int]] = []

#: the agent runs the current test started (``running``): a wait for tasks stops as soon as the
#: latest has ended, with its error, instead of waiting out DEADLINE for tasks it will never ask
RUNS: list[asyncio.Future[Any]] = []


@tool
def transfer(to: str, amount: int) -> str:
    """Send money to a payee.

    Args:
        to: the payee's name
        amount: how many euros
    """
    TRANSFERS.append((to, amount))
    return f"sent {amount} EUR to {to}"


@tool
def lookup(name: str) -> str:
    """Look a payee up (read-only).

    Args:
        name: the payee's name
    """
    return f"{name} is a known payee"


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hitl.db'}"


def tool_agent(model: ScriptedModel) -> ToolCallingAgent:
    return ToolCallingAgent(
        tools=[transfer, lookup], model=model, name="payments", max_steps=4, verbosity_level=LogLevel.OFF
    )


def code_agent(model: ScriptedModel) -> CodeAgent:
    return CodeAgent(tools=[transfer], model=model, name="coder", max_steps=4, verbosity_level=LogLevel.OFF)


async def waiting_tasks(tmp_path: Path, count: int = 1) -> list[TaskContext]:
    """The tasks awaiting a decision, once ``count`` of them wait (a person's view of the store)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        while True:
            pending = await machine.get_pending_approvals()
            if len(pending) >= count:
                return sorted(pending, key=lambda t: t.task_id)
            if RUNS and RUNS[-1].done() and len(await machine.get_pending_approvals()) < count:
                run = RUNS[-1]
                error = None if run.cancelled() else run.exception()
                ended = f"with {error!r}" if error else f"returning {run.result()!r}"
                raise AssertionError(
                    f"expected {count} waiting tasks, saw {len(pending)}: the agent's run ended {ended}"
                ) from error
            assert loop.time() < give_up, f"expected {count} waiting tasks, saw {len(pending)}"
            await asyncio.sleep(0.05)


async def decide(tmp_path: Path, task_id: str, how: str, *args: Any, **kwargs: Any) -> None:
    """A person decides through another machine on the same file, as another process would."""
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        await getattr(machine, how)(task_id, *args, **kwargs)


async def all_tasks(tmp_path: Path) -> dict[str, TaskContext]:
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        return {t.task_id: t for t in await machine.get_all_tasks()}


def running(run: Callable[[], Any]) -> asyncio.Future[Any]:
    """``agent.run`` on a thread of its own: it blocks there until a person decides."""
    future = asyncio.ensure_future(asyncio.to_thread(run))
    RUNS.append(future)
    return future
