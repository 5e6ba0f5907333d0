"""The OpenAI Agents SDK adapter, in one process on the in-memory store: the real SDK, an offline model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from agents import Agent
from hitl_openai_agents import CAPABILITIES, FRAMEWORK, ApprovalRunner, OfflineToolModel, PausedRun

from hitl_core import (
    HITLError,
    HITLStateMachine,
    InvalidTransitionError,
    PayloadError,
    TaskContext,
    TaskNotFoundError,
    TaskState,
)

PAY_BOB = ("transfer", {"to": "bob", "amount": 5})
PAY_EVE = ("transfer", {"to": "eve", "amount": 900})

MakeAgent = Callable[..., tuple[Agent[None], OfflineToolModel]]
WhenPending = Callable[..., Awaitable[None]]


async def test_approved_call_runs_the_tool_and_the_model_sees_its_output(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, model = make_agent([PAY_BOB])
    runner = ApprovalRunner(machine)

    async def approve(pending: list[TaskContext]) -> None:
        assert transfers == []  # nothing ran before the decision
        await machine.approve(pending[0].task_id, "alice")

    result, _ = await asyncio.gather(runner.run(agent, "pay bob 5", run_id="r1"), when_pending(machine, 1, approve))
    assert transfers == [("bob", 5)]
    assert model.seen_outputs == {"call_0": "sent 5 to bob"}
    assert result.final_output == "transfer call_0: sent 5 to bob"
    task = await machine.get_task("r1:call_0")
    assert task is not None and task.state is TaskState.COMPLETED
    assert task.result == {"approved": True, "output": "sent 5 to bob"}


async def test_task_names_the_tool_args_call_id_agent_and_framework(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending
) -> None:
    agent, _ = make_agent([PAY_BOB])
    seen: list[TaskContext] = []

    async def look_then_approve(pending: list[TaskContext]) -> None:
        seen.extend(pending)
        await machine.approve(pending[0].task_id, "alice")

    await asyncio.gather(
        ApprovalRunner(machine, severity="high").run(agent, "pay", run_id="r2"),
        when_pending(machine, 1, look_then_approve),
    )
    task = seen[0]
    interrupt = task.interrupt_point
    assert interrupt is not None and interrupt.action is not None
    assert (task.task_id, task.framework, task.run_id, task.agent) == ("r2:call_0", FRAMEWORK, "r2", "payments")
    assert interrupt.action.name == "transfer"
    assert interrupt.action.args == {"to": "bob", "amount": 5}
    assert interrupt.context == {"tool": "transfer", "call_id": "call_0", "agent": "payments", "turn": 1}
    assert interrupt.severity == "high"
    assert interrupt.reason == "payments wants to call transfer"


async def test_rejected_call_never_runs_and_the_model_reads_the_reason(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, model = make_agent([PAY_EVE])

    async def reject(pending: list[TaskContext]) -> None:
        await machine.reject(pending[0].task_id, "alice", "eve is not a known payee")

    result, _ = await asyncio.gather(
        ApprovalRunner(machine).run(agent, "pay eve", run_id="r3"), when_pending(machine, 1, reject)
    )
    assert transfers == []
    assert model.seen_outputs == {"call_0": "Tool call rejected by alice: eve is not a known payee"}
    assert result.final_output == "transfer call_0: Tool call rejected by alice: eve is not a known payee"
    task = await machine.get_task("r3:call_0")
    assert task is not None and task.state is TaskState.COMPLETED
    assert task.result == {"approved": False, "output": "Tool call rejected by alice: eve is not a known payee"}


async def test_rejection_without_a_reason_still_tells_the_model_who_refused(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending
) -> None:
    agent, model = make_agent([PAY_EVE])

    async def reject(pending: list[TaskContext]) -> None:
        await machine.reject(pending[0].task_id, "alice")

    await asyncio.gather(ApprovalRunner(machine).run(agent, "pay eve", run_id="r4"), when_pending(machine, 1, reject))
    assert model.seen_outputs == {"call_0": "Tool call rejected by alice."}


async def test_edit_and_respond_are_refused_because_the_sdk_cannot_carry_them(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, _ = make_agent([PAY_EVE])
    refused: list[str] = []

    async def try_edit_then_reject(pending: list[TaskContext]) -> None:
        task = pending[0]
        assert task.interrupt_point is not None
        assert task.interrupt_point.allowed_decisions == ["approve", "reject"]
        with pytest.raises(InvalidTransitionError) as edit:
            await machine.edit(task.task_id, {"to": "eve", "amount": 9}, "alice")
        with pytest.raises(InvalidTransitionError) as respond:
            await machine.respond(task.task_id, "sent", "alice")
        refused.extend([str(edit.value), str(respond.value)])
        await machine.reject(task.task_id, "alice", "no edits possible, refusing")

    await asyncio.gather(
        ApprovalRunner(machine).run(agent, "pay eve", run_id="r5"), when_pending(machine, 1, try_edit_then_reject)
    )
    assert all("allows only approve, reject" in message for message in refused)
    assert transfers == []
    assert CAPABILITIES.decisions == ("approve", "reject")


async def test_two_pending_approvals_in_one_turn_resume_once_both_are_decided(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, model = make_agent([PAY_BOB, PAY_EVE])
    run = asyncio.create_task(ApprovalRunner(machine).run(agent, "pay both", run_id="r6"))

    async def approve_the_first(pending: list[TaskContext]) -> None:
        await machine.approve("r6:call_0", "alice")

    await when_pending(machine, 2, approve_the_first)
    await asyncio.sleep(0.2)
    # One decided call does not resume the run: the approved transfer waits for its sibling.
    assert not run.done() and transfers == []
    await machine.reject("r6:call_1", "bob", "too much")
    result = await asyncio.wait_for(run, 20)
    assert transfers == [("bob", 5)]
    assert model.seen_outputs == {"call_0": "sent 5 to bob", "call_1": "Tool call rejected by bob: too much"}
    assert "transfer call_1: Tool call rejected by bob: too much" in result.final_output
    states = [(await machine.get_task(t)) for t in ("r6:call_0", "r6:call_1")]
    assert [t.state for t in states if t is not None] == [TaskState.COMPLETED, TaskState.COMPLETED]


async def test_calls_that_need_no_approval_make_no_task(machine: HITLStateMachine, make_agent: MakeAgent) -> None:
    agent, _ = make_agent([("balance", {})])
    result = await ApprovalRunner(machine).run(agent, "balance?", run_id="r7")
    assert result.final_output == "balance call_0: balance 100"
    assert await machine.get_all_tasks() == []


async def test_each_turn_asks_again(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, _ = make_agent([PAY_BOB], [PAY_EVE])
    asked: list[TaskContext] = []

    async def approve_all(pending: list[TaskContext]) -> None:
        asked.extend(pending)
        for task in pending:
            await machine.approve(task.task_id, "alice")

    run = asyncio.create_task(ApprovalRunner(machine).run(agent, "pay", run_id="r8"))
    await when_pending(machine, 1, approve_all)
    await when_pending(machine, 1, approve_all)
    await asyncio.wait_for(run, 20)
    assert [(t.task_id, t.metadata["openai_agents"]["turn"]) for t in asked] == [("r8:call_0", 1), ("r8:call_1", 2)]
    assert transfers == [("bob", 5), ("eve", 900)]


async def test_start_records_the_run_and_resume_continues_it_with_a_fresh_agent(
    machine: HITLStateMachine, make_agent: MakeAgent, transfers: list[tuple[str, int]]
) -> None:
    agent, _ = make_agent([PAY_BOB, PAY_EVE])
    paused = await ApprovalRunner(machine).start(agent, "pay both", run_id="r9")
    assert isinstance(paused, PausedRun)
    assert paused.task_ids == ["r9:call_0", "r9:call_1"]
    await machine.approve("r9:call_0", "alice")
    await machine.approve("r9:call_1", "alice")
    # A new agent object and a new runner: all the resumer needs is in the store.
    fresh_agent, fresh_model = make_agent([PAY_BOB, PAY_EVE])
    result = await ApprovalRunner(machine).resume(fresh_agent, "r9")
    assert transfers == [("bob", 5), ("eve", 900)]
    assert fresh_model.seen_outputs == {"call_0": "sent 5 to bob", "call_1": "sent 900 to eve"}
    assert result.final_output.startswith("transfer call_0: sent 5 to bob")


async def test_start_without_any_approval_returns_the_finished_result(
    machine: HITLStateMachine, make_agent: MakeAgent
) -> None:
    agent, _ = make_agent([("balance", {})])
    result = await ApprovalRunner(machine).start(agent, "balance?")
    assert not isinstance(result, PausedRun)
    assert result.final_output == "balance call_0: balance 100"


async def test_resuming_an_unknown_run_is_a_clear_error(machine: HITLStateMachine, make_agent: MakeAgent) -> None:
    agent, _ = make_agent([PAY_BOB])
    with pytest.raises(TaskNotFoundError, match="no paused openai-agents run with this run_id"):
        await ApprovalRunner(machine).resume(agent, "never-started")


async def test_corrupt_stored_run_state_is_a_clear_error_and_the_tasks_stay(
    machine: HITLStateMachine, make_agent: MakeAgent
) -> None:
    agent, _ = make_agent([PAY_BOB])
    await machine.start_task(
        "bad:call_0",
        {"openai_agents": {"turn": 1, "call_id": "call_0", "tool": "transfer", "run_state": {"$schemaVersion": "0.0"}}},
        framework=FRAMEWORK,
        run_id="bad",
    )
    await machine.request_approval("bad:call_0", "payments wants to call transfer")
    with pytest.raises(HITLError, match="stored openai-agents run state cannot be restored for agent 'payments'"):
        await ApprovalRunner(machine).resume(agent, "bad")
    task = await machine.get_task("bad:call_0")
    assert task is not None and task.state is TaskState.AWAITING_APPROVAL


async def test_resuming_with_an_agent_that_lacks_the_tool_is_a_clear_error(
    machine: HITLStateMachine, make_agent: MakeAgent
) -> None:
    agent, _ = make_agent([PAY_BOB])
    await ApprovalRunner(machine).start(agent, "pay", run_id="r10")
    await machine.approve("r10:call_0", "alice")
    stranger = Agent(name="support", model=OfflineToolModel([]), tools=[])
    with pytest.raises(HITLError, match="cannot be restored for agent 'support'"):
        await ApprovalRunner(machine).resume(stranger, "r10")
    task = await machine.get_task("r10:call_0")
    assert task is not None and task.state is TaskState.APPROVED  # nothing lost: a right agent can go on


async def test_no_decision_before_the_deadline_rejects_as_a_timeout(
    machine: HITLStateMachine, make_agent: MakeAgent, transfers: list[tuple[str, int]]
) -> None:
    agent, model = make_agent([PAY_EVE])
    result = await asyncio.wait_for(ApprovalRunner(machine, timeout=0.2).run(agent, "pay", run_id="r11"), 20)
    assert transfers == []
    assert model.seen_outputs == {"call_0": "Tool call rejected by hitl:timeout: no decision before the deadline"}
    assert "no decision before the deadline" in result.final_output
    task = await machine.get_task("r11:call_0")
    assert task is not None and task.decision is not None and task.decision.type == "timeout"


async def test_severity_may_depend_on_the_call(machine: HITLStateMachine, make_agent: MakeAgent) -> None:
    agent, _ = make_agent([PAY_BOB, PAY_EVE])

    def by_amount(tool: str, args: dict[str, Any]) -> str:
        return "critical" if args.get("amount", 0) >= 100 else "low"

    await ApprovalRunner(machine, severity=by_amount).start(agent, "pay", run_id="r12")
    tasks = {
        t.task_id: t.interrupt_point.severity
        for t in await machine.get_pending_approvals()
        if t.interrupt_point is not None
    }
    assert tasks == {"r12:call_0": "low", "r12:call_1": "critical"}


class MalformedArgumentsModel(OfflineToolModel):
    """Makes its calls with arguments that are not JSON (models do, now and then)."""

    def _respond(self, items: list[Any]) -> list[Any]:
        from openai.types.responses import ResponseFunctionToolCall

        return [
            ResponseFunctionToolCall(
                id=o.id, call_id=o.call_id, type="function_call", name=o.name, arguments='{"to": "bob", "amount": 5'
            )
            if isinstance(o, ResponseFunctionToolCall)
            else o
            for o in super()._respond(items)
        ]


async def test_malformed_tool_arguments_are_shown_verbatim_and_never_run(
    machine: HITLStateMachine, make_agent: MakeAgent, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    agent, _ = make_agent()
    model = MalformedArgumentsModel([[PAY_BOB]])
    agent.model = model
    seen: list[TaskContext] = []

    async def approve(pending: list[TaskContext]) -> None:
        seen.extend(pending)
        await machine.approve(pending[0].task_id, "alice")

    await asyncio.gather(ApprovalRunner(machine).run(agent, "pay", run_id="r13"), when_pending(machine, 1, approve))
    interrupt = seen[0].interrupt_point
    assert interrupt is not None and interrupt.action is not None
    assert interrupt.action.args == {"_raw_arguments": '{"to": "bob", "amount": 5'}
    assert transfers == []  # approved, but the SDK cannot parse the call: it reports an error to the model
    assert "call_0" in model.seen_outputs and "sent" not in model.seen_outputs["call_0"]


async def test_a_turn_that_cannot_be_fully_recorded_stops_the_run_and_leaves_no_task_waiting(
    machine: HITLStateMachine, make_agent: MakeAgent, transfers: list[tuple[str, int]]
) -> None:
    agent, _ = make_agent([PAY_BOB, PAY_EVE])

    def picky(tool: str, args: dict[str, Any]) -> str:
        if args["amount"] > 100:
            raise PayloadError("no severity for this one")
        return "low"

    # The first call is already waiting when the second cannot be asked about.
    with pytest.raises(PayloadError, match="no severity for this one"):
        await ApprovalRunner(machine, severity=picky).run(agent, "pay both", run_id="r14")
    assert transfers == []
    assert await machine.get_pending_approvals() == []
    states = {t.task_id: t.state for t in await machine.get_all_tasks()}
    assert states == {"r14:call_0": TaskState.FAILED, "r14:call_1": TaskState.FAILED}


async def test_a_run_state_over_the_payload_limit_is_refused_before_anything_runs(
    make_agent: MakeAgent, transfers: list[tuple[str, int]]
) -> None:
    # The serialised run state rides in each task's metadata: a store that refuses it stops the run.
    tiny = HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=64)
    agent, _ = make_agent([PAY_BOB])
    with pytest.raises(PayloadError, match="metadata"):
        await ApprovalRunner(tiny).run(agent, "pay", run_id="r15")
    assert transfers == []
    assert await tiny.get_all_tasks() == []


async def large_amounts_only(context: Any, params: dict[str, Any], call_id: str) -> bool:
    """An SDK approval predicate: only transfers over 100 need a person."""
    return int(params.get("amount", 0)) > 100


async def test_a_needs_approval_predicate_asks_only_about_the_calls_it_selects(
    machine: HITLStateMachine, when_pending: WhenPending, transfers: list[tuple[str, int]]
) -> None:
    from agents import function_tool

    @function_tool(needs_approval=large_amounts_only)
    def pay(to: str, amount: int) -> str:
        """Send money to someone."""
        transfers.append((to, amount))
        return f"paid {amount} to {to}"

    model = OfflineToolModel([[("pay", {"to": "bob", "amount": 5}), ("pay", {"to": "eve", "amount": 900})]])
    agent = Agent(name="payments", model=model, tools=[pay])
    asked: list[TaskContext] = []

    async def approve(pending: list[TaskContext]) -> None:
        asked.extend(pending)
        await machine.approve(pending[0].task_id, "alice")

    await asyncio.gather(ApprovalRunner(machine).run(agent, "pay", run_id="r16"), when_pending(machine, 1, approve))
    assert [t.task_id for t in asked] == ["r16:call_1"]
    assert sorted(transfers) == [("bob", 5), ("eve", 900)]
    assert model.seen_outputs == {"call_0": "paid 5 to bob", "call_1": "paid 900 to eve"}
