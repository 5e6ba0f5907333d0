"""A support agent for the Pydantic AI adapter tests, on Pydantic AI's own offline ``FunctionModel``.

The model is a script: its first response makes the tool calls a test asks for, its second reads
the tool results it got back (recorded in ``SEEN``) and answers with them. Also imported by the
cross-process tests' helper process.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

# Before Pydantic AI is imported: no telemetry, no network.
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("LOGFIRE_SEND_TO_LOGFIRE", "false")
os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")

from pydantic_ai import Agent, DeferredToolRequests, RunContext
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from hitl_core import HITLStateMachine, TaskContext

#: What the tools really did, in order: tests check refused calls never ran.
DONE: list[tuple[str, dict[str, Any]]] = []
#: The tool results the model read on its second turn: tool name -> (content, outcome).
SEEN: dict[str, tuple[Any, str]] = {}
#: The ``ctx.tool_call_metadata`` each executed tool saw.
METADATA: dict[str, Any] = {}
#: Refunds up to this amount need no approval.
REFUND_LIMIT = 100


def scripted_model(*calls: tuple[str, dict[str, Any]]) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(
                parts=[ToolCallPart(name, args, tool_call_id=f"call_{i}") for i, (name, args) in enumerate(calls)]
            )
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                SEEN[part.tool_name] = (part.content, part.outcome)
            elif hasattr(part, "tool_name") and hasattr(part, "content"):
                SEEN[part.tool_name] = (part.content, "retry")
        return ModelResponse(parts=[TextPart("answered: " + json.dumps(sorted(SEEN), default=str))])

    return FunctionModel(respond)


def support_agent(*calls: tuple[str, dict[str, Any]], deferred_output: bool = True) -> Agent[None, Any]:
    """The refund support agent: refunds above ``REFUND_LIMIT`` and account deletion need approval."""
    agent: Agent[None, Any] = Agent(
        scripted_model(*calls), output_type=[str, DeferredToolRequests] if deferred_output else str
    )

    @agent.tool
    def refund(ctx: RunContext[None], order: str, amount: int) -> str:
        """Refund an order."""
        if amount > REFUND_LIMIT and not ctx.tool_call_approved:
            raise ApprovalRequired(metadata={"reason": f"refund of {amount} is above {REFUND_LIMIT}"})
        DONE.append(("refund", {"order": order, "amount": amount}))
        METADATA["refund"] = ctx.tool_call_metadata
        return f"refunded {amount} on {order}"

    @agent.tool_plain(requires_approval=True)
    def close_account(customer: str) -> str:
        """Close a customer's account."""
        DONE.append(("close_account", {"customer": customer}))
        return f"closed {customer}"

    @agent.tool_plain
    def ask_customer(question: str) -> str:
        """Ask the customer something; the answer comes from a person."""
        raise CallDeferred(kind="question")

    return agent


async def decide_when_pending(
    machine: HITLStateMachine, count: int, decide: Callable[[list[TaskContext]], Awaitable[None]], timeout: float = 30
) -> None:
    """Once ``count`` tasks wait, ``decide`` them, as a person at the console would."""
    async with asyncio.timeout(timeout):
        while len(pending := await machine.get_pending_approvals()) < count:  # noqa: ASYNC110 (a person polls too)
            await asyncio.sleep(0.01)
    await decide(pending)
