"""A support agent (Pydantic AI) whose refunds above a limit wait for a person in ``hitl console``.

Offline: the agent runs on Pydantic AI's own ``FunctionModel``, scripted like a model that read a
customer's email: it refunds two orders — 35 EUR (under the limit: runs at once) and 480 EUR
(``ApprovalRequired``: waits) — asks to close the account (``requires_approval=True``: waits) and
asks the customer's preferred card (``CallDeferred(kind="question")``: a person answers). Then it
tells the customer what happened, from the tool results it got back::

    python examples/pydantic_ai_refund.py          # waits for your decisions
    hitl console                                    # in another terminal: a / r / e / m

The store is ``--store URL``, else ``$HITL_STORE``, else the ``hitl`` command's SQLite file.
``--decide-for-me`` starts a stand-in reviewer in this process (it edits the big refund down to
the limit, rejects the account closure with a reason, answers the card question).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from typing import Any

os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # offline: no telemetry export
os.environ.setdefault("PYDANTIC_AI_NO_BANNER", "1")  # no observability banner in the terminal

from hitl_pydantic_ai import AgentApprovals
from pydantic_ai import Agent, DeferredToolRequests, RunContext
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url

REFUND_LIMIT = 100  # EUR a support agent may refund without a person


def support_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A scripted stand-in for an LLM: first the tool calls, then a reply built from their results."""
    if len(messages) == 1:
        return ModelResponse(
            parts=[
                ToolCallPart("refund", {"order": "A-1001", "amount": 35, "why": "late delivery"}, tool_call_id="r1"),
                ToolCallPart("refund", {"order": "A-1002", "amount": 480, "why": "damaged TV"}, tool_call_id="r2"),
                ToolCallPart("close_account", {"customer": "c-77"}, tool_call_id="c1"),
                ToolCallPart("ask_customer", {"question": "Which card should the refunds go to?"}, tool_call_id="q1"),
            ]
        )
    lines = [f"- {part.tool_name}: {part.content}" for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
    return ModelResponse(parts=[TextPart("Dear customer, here is what we did:\n" + "\n".join(lines))])


def support_agent() -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(
        FunctionModel(support_model), output_type=[str, DeferredToolRequests], name="support-agent"
    )

    @agent.tool
    def refund(ctx: RunContext[None], order: str, amount: int, why: str) -> str:
        """Refund ``amount`` EUR on ``order``."""
        if amount > REFUND_LIMIT and not ctx.tool_call_approved:
            raise ApprovalRequired(
                metadata={"reason": f"Refund {amount} EUR on {order} ({why}): over the {REFUND_LIMIT} EUR limit"}
            )
        return f"refunded {amount} EUR on {order}"

    @agent.tool_plain(requires_approval=True)
    def close_account(customer: str) -> str:
        """Close the customer's account."""
        return f"closed account {customer}"

    @agent.tool_plain
    def ask_customer(question: str) -> str:
        """Ask the customer; a person answers in the console."""
        raise CallDeferred(kind="question")

    return agent


async def stand_in_reviewer(machine: HITLStateMachine, run_id: str, expected: int) -> None:
    """Decides this run's calls as a person at the console would."""
    decided: set[str] = set()
    while len(decided) < expected:
        for task in await machine.get_pending_approvals():
            if task.run_id != run_id or task.task_id in decided or task.interrupt_point is None:
                continue
            action = task.interrupt_point.action
            name = action.name if action else ""
            if name == "refund":
                await machine.edit(
                    task.task_id,
                    {**action.args, "amount": REFUND_LIMIT},
                    "stand-in-reviewer",
                    message="goodwill cap; the rest goes through the insurer",
                )
            elif name == "close_account":
                await machine.reject(task.task_id, "stand-in-reviewer", "the customer has an open order")
            else:
                await machine.respond(task.task_id, "the Visa ending 4242", "stand-in-reviewer")
            decided.add(task.task_id)
        await asyncio.sleep(0.05)


async def run(store: str, decide_for_me: bool) -> str:
    machine = HITLStateMachine(store)
    run_id = f"support-{uuid.uuid4().hex[:6]}"
    try:
        print(f"store: {store}")
        print(f"run {run_id}: decide its calls in `hitl console --store {store}`")
        adapter = AgentApprovals(
            machine, agent="support-agent", severity=lambda tool, args: "high" if tool == "close_account" else "medium"
        )
        reviewer = asyncio.create_task(stand_in_reviewer(machine, run_id, 3)) if decide_for_me else None
        result = await adapter.run(
            support_agent(), "Email from c-77: my TV arrived broken, and the mug was late.", run_id=run_id
        )
        if reviewer is not None:
            await reviewer
        print(result.output)
        return str(result.output)
    finally:
        await machine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument("--decide-for-me", action="store_true", help="a stand-in reviewer decides instead of you")
    args = parser.parse_args(argv)
    asyncio.run(run(resolve_store_url(args.store), args.decide_for_me))


if __name__ == "__main__":
    main()
