"""A payments agent on Google ADK for the adapter's tests: a scripted model, no network.

Three tools, one per way ADK asks for confirmation: ``transfer`` asks above 100 (a
``require_confirmation`` predicate), ``close_account`` always (``require_confirmation=True``),
``refund`` calls ``tool_context.request_confirmation`` itself above 50. ``DONE`` records what
really ran, in this process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # offline: no telemetry export

from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.runners import Runner
from google.adk.sessions import BaseSessionService, InMemorySessionService
from google.adk.tools import FunctionTool, ToolContext
from hitl_adk import ConfirmationPlugin, ScriptedLlm

from hitl_core import HITLStateMachine, TaskContext

DONE: list[tuple[str, dict[str, Any]]] = []
#: Errors the next transfers raise, one each (a payment provider that is down).
FAIL_NEXT: list[Exception] = []

PAY_BOB = {"name": "transfer", "args": {"to": "bob", "amount": 500}, "id": "call-bob"}
PAY_EVE = {"name": "transfer", "args": {"to": "eve", "amount": 5}, "id": "call-eve"}
CLOSE = {"name": "close_account", "args": {"customer": "c-9"}, "id": "call-close"}
REFUND = {"name": "refund", "args": {"order": "A-1", "amount": 80}, "id": "call-refund"}


def transfer(to: str, amount: int) -> str:
    """Send ``amount`` EUR to ``to``."""
    if FAIL_NEXT:
        raise FAIL_NEXT.pop(0)
    DONE.append(("transfer", {"to": to, "amount": amount}))
    return f"sent {amount} EUR to {to}"


def close_account(customer: str) -> str:
    """Close the customer's account."""
    DONE.append(("close_account", {"customer": customer}))
    return f"closed {customer}"


def refund(order: str, amount: int, tool_context: ToolContext) -> str:
    """Refund ``amount`` EUR on ``order``; above 50 a person confirms first."""
    if amount > 50:
        confirmation = tool_context.tool_confirmation
        if confirmation is None:
            tool_context.request_confirmation(hint=f"Refund {amount} EUR on {order}?")
            return "waiting for confirmation"
        if not confirmation.confirmed:
            return "refund refused"
    DONE.append(("refund", {"order": order, "amount": amount}))
    return f"refunded {amount} EUR on {order}"


def runner(
    *turns: list[dict[str, Any]], sessions: BaseSessionService | None = None, plugin: bool = True
) -> tuple[Runner, ScriptedLlm]:
    """A Runner for the payments agent whose model plays ``turns`` (each a list of calls)."""
    model = ScriptedLlm(turns=list(turns))
    agent = LlmAgent(
        name="payer",
        model=model,
        instruction="Pay what you are asked to pay.",
        tools=[
            FunctionTool(transfer, require_confirmation=lambda to, amount: amount > 100),
            FunctionTool(close_account, require_confirmation=True),
            refund,
        ],
    )
    app = App(name="payments", root_agent=agent, plugins=[ConfirmationPlugin()] if plugin else [])
    return Runner(app=app, session_service=sessions or InMemorySessionService()), model


def seen(model: ScriptedLlm) -> dict[str, Any]:
    """The last tool result the model was given for each call id."""
    return {call_id: response for _, call_id, response in model.seen}


async def when_pending(
    machine: HITLStateMachine, count: int, decide: Callable[[list[TaskContext]], Awaitable[None]], timeout: float = 30.0
) -> None:
    """Wait until ``count`` tasks wait for a decision, then ``decide`` them (as a person would)."""
    async with asyncio.timeout(timeout):
        while True:
            pending = await machine.get_pending_approvals()
            if len(pending) >= count:
                break
            await asyncio.sleep(0.01)
    await decide(pending)
