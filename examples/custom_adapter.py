"""A whole adapter in one file: a toy agent framework whose tool calls a person decides.

``docs/adapters.md`` walks through it. The "framework" (``ToyAgent``) plans tool calls and runs
the ones it is told to run; ``ToyApprovals`` is the adapter: only the mapping from the
framework's pending calls to hitl ``Request``\\s and from the decisions back to the framework.
Asking, waiting, deadlines, claiming, finishing and retrying a failed run come from
``hitl_core.adapters.Adapter``. Run it: ``python -m examples.custom_adapter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hitl_core import Action, DecisionType, HITLError, HITLStateMachine, TaskContext, TaskState
from hitl_core.adapters import Adapter, Capabilities, Request

# -- the framework (stands in for LangGraph, an SDK, …) -----------------------------------------


@dataclass(slots=True)
class Call:
    id: str
    tool: str
    args: dict[str, Any]


class ToyAgent:
    """Plans one tool call per step of its goal; runs a call with the args it is given, or not."""

    def __init__(self, tools: dict[str, Callable[..., str]]) -> None:
        self.tools = tools

    def plan(self, goal: list[tuple[str, dict[str, Any]]]) -> list[Call]:
        return [Call(f"call_{n}", tool, args) for n, (tool, args) in enumerate(goal)]

    def carry_on(self, calls: list[Call], verdicts: dict[str, tuple[str, Any]]) -> list[str]:
        """``verdicts[call.id]`` is ("run", args) or ("refuse", what the model reads instead)."""
        outputs = []
        for call in calls:
            verdict, value = verdicts[call.id]
            outputs.append(self.tools[call.tool](**value) if verdict == "run" else value)
        return outputs


# -- the adapter: the framework's mapping and nothing else ------------------------------------


class ToyApprovals(Adapter):
    capabilities = Capabilities(
        framework="toy",
        decisions=("approve", "reject", "edit"),  # a toy tool can't take a person's answer as its result
        rejection_reason="yes: the call's output is Decision.rejection_text()",
        partial_decisions="the agent carries on once every call of the plan is decided",
        cross_process_resume=False,
    )

    async def run(self, agent: ToyAgent, goal: list[tuple[str, dict[str, Any]]], run_id: str) -> list[str]:
        calls = agent.plan(goal)
        # 1. ask: one task per pending call, siblings under the run's parent task
        task_ids = await self.ask_batch(
            run_id,
            [
                (
                    f"toy:{run_id}:{call.id}",
                    Request(
                        reason=f"{call.tool} {call.args}",
                        action=Action(name=call.tool, args=call.args),
                        allowed_decisions=("approve", "reject", "edit"),
                        step=call.tool,
                    ),
                    None,
                )
                for call in calls
            ],
        )
        # 2. wait (deadlines apply the default) and map each decision back
        decisions = await self.decisions(task_ids)
        assert decisions is not None  # waited for
        verdicts = {}
        for call, decision in zip(calls, decisions, strict=True):
            if not decision.approved:
                verdicts[call.id] = ("refuse", decision.rejection_text())
            elif decision.effective_type is DecisionType.EDIT:
                verdicts[call.id] = ("run", decision.edited_args)
            else:
                verdicts[call.id] = ("run", call.args)
        # 3. claim (exactly one process carries a batch back), carry back, finish
        claimed = await self.claim(task_ids)
        if claimed is None:
            raise HITLError(f"another process is carrying run {run_id!r} back")
        try:
            outputs = agent.carry_on(calls, verdicts)
        except Exception as exc:
            await self.failed(claimed, exc)  # FAILED with the error, and asked again as …~1
            raise
        await self.delivered(claimed)
        await self.finish_run(run_id)
        return outputs


# -- using it -----------------------------------------------------------------------------------


async def run() -> list[str]:
    machine = HITLStateMachine("memory://")
    agent = ToyAgent({"transfer": lambda to, amount: f"sent {amount} to {to}"})
    adapter = ToyApprovals(machine, agent="payments-bot")
    asked: list[TaskContext] = []
    both_asked = asyncio.Event()

    def on_ask(task: TaskContext, old: TaskState | None, new: TaskState) -> None:
        asked.append(task)
        if len(asked) == 2:
            both_asked.set()

    machine.add_callback(on_ask, state=TaskState.AWAITING_APPROVAL)
    plan = [("transfer", {"to": "bob", "amount": 5}), ("transfer", {"to": "eve", "amount": 900})]
    running = asyncio.create_task(adapter.run(agent, plan, "r1"))
    # A person at the console (here: this coroutine) decides once both calls wait.
    await asyncio.wait_for(both_asked.wait(), timeout=30)
    to_bob, to_eve = sorted(asked, key=lambda t: t.task_id)
    await machine.edit(to_bob.task_id, {"to": "bob", "amount": 4}, "alice")
    await machine.reject(to_eve.task_id, "alice", "eve is not a known payee")
    outputs = await running
    for output in outputs:
        print(output)
    for task in sorted(await machine.get_all_tasks(), key=lambda t: t.task_id):
        print(f"{task.task_id}: {task.state} ({task.current_step})")
    await machine.close()
    return outputs


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
