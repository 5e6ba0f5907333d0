"""The Pydantic AI adapter in one process: real agents on Pydantic AI's offline FunctionModel."""

from __future__ import annotations

import asyncio

import pytest
from hitl_pydantic_ai import CAPABILITIES, AgentApprovals, PausedRun
from hitl_pydantic_ai.adapter import META_KEY, parent_task_id
from pa_support import DONE, METADATA, SEEN, decide_when_pending, support_agent

from hitl_core import HITLError, HITLStateMachine, InvalidTransitionError, TaskContext, TaskNotFoundError, TaskState

BIG_REFUND = ("refund", {"order": "A-1001", "amount": 500})


async def test_approve_runs_the_tool_and_the_model_reads_its_result(machine: HITLStateMachine) -> None:
    seen: list[TaskContext] = []

    async def approve(pending: list[TaskContext]) -> None:
        seen.extend(pending)
        await machine.approve(pending[0].task_id, "alice")

    decider = asyncio.create_task(decide_when_pending(machine, 1, approve))
    result = await AgentApprovals(machine, agent="support").run(support_agent(BIG_REFUND), "refund A-1001", run_id="r1")
    await decider
    assert result.output.startswith("answered")
    assert DONE == [("refund", {"order": "A-1001", "amount": 500})]
    assert SEEN["refund"][0] == "refunded 500 on A-1001"
    task = seen[0]
    assert task.framework == "pydantic-ai" and task.run_id == "r1" and task.parent_id == parent_task_id("r1")
    assert task.agent == "support" and task.current_step == "refund"
    assert task.interrupt_point.reason == "refund of 500 is above 100"
    assert task.interrupt_point.action.name == "refund"
    assert task.interrupt_point.action.args == {"order": "A-1001", "amount": 500}
    assert task.interrupt_point.allowed_decisions == ["approve", "reject", "edit"]
    states = {t.task_id: t.state for t in await machine.get_all_tasks()}
    assert set(states.values()) == {TaskState.COMPLETED} and len(states) == 2


async def test_rejection_reason_reaches_the_model_and_the_tool_does_not_run(machine: HITLStateMachine) -> None:
    async def reject(pending: list[TaskContext]) -> None:
        await machine.reject(pending[0].task_id, "bob", "order A-1001 was already refunded")

    decider = asyncio.create_task(decide_when_pending(machine, 1, reject))
    await AgentApprovals(machine).run(support_agent(BIG_REFUND), "refund A-1001")
    await decider
    assert DONE == []
    content, outcome = SEEN["refund"]
    assert "order A-1001 was already refunded" in str(content) and "bob" in str(content)
    assert outcome == "denied"


async def test_edit_runs_the_tool_with_the_edited_args(machine: HITLStateMachine) -> None:
    async def edit(pending: list[TaskContext]) -> None:
        await machine.edit(pending[0].task_id, {"order": "A-1001", "amount": 90}, "alice")

    decider = asyncio.create_task(decide_when_pending(machine, 1, edit))
    await AgentApprovals(machine).run(support_agent(BIG_REFUND), "refund A-1001")
    await decider
    assert DONE == [("refund", {"order": "A-1001", "amount": 90})]
    assert SEEN["refund"][0] == "refunded 90 on A-1001"
    note = METADATA["refund"]["hitl"]
    assert note["decision"] == "edit" and note["actor"] == "alice"
    assert note["original_args"] == {"order": "A-1001", "amount": 500}


async def test_respond_answers_a_question_as_the_tools_return_value(machine: HITLStateMachine) -> None:
    seen: list[TaskContext] = []

    async def respond(pending: list[TaskContext]) -> None:
        seen.extend(pending)
        with pytest.raises(InvalidTransitionError):
            await machine.approve(pending[0].task_id, "carol")
        await machine.respond(pending[0].task_id, "the Visa ending 4242", "carol")

    decider = asyncio.create_task(decide_when_pending(machine, 1, respond))
    await AgentApprovals(machine).run(support_agent(("ask_customer", {"question": "Which card?"})), "help")
    await decider
    assert SEEN["ask_customer"] == ("the Visa ending 4242", "success")
    interrupt = seen[0].interrupt_point
    assert interrupt.reason == "Which card?" and interrupt.kind == "question"
    assert interrupt.allowed_decisions == ["respond", "reject"]


@pytest.mark.parametrize("first", ["refund", "close_account"])
async def test_two_pending_calls_continue_the_run_once_both_are_decided(machine: HITLStateMachine, first: str) -> None:
    async def decide(pending: list[TaskContext]) -> None:
        by_tool = {t.interrupt_point.action.name: t.task_id for t in pending}
        second = "close_account" if first == "refund" else "refund"
        await machine.approve(by_tool[first], "alice")
        await asyncio.sleep(0.05)
        # Pydantic AI takes a batch's results together: nothing ran on the first decision.
        assert DONE == [] and (await machine.get_task(by_tool[second])).state is TaskState.AWAITING_APPROVAL
        await machine.reject(by_tool[second], "bob", "not this one")

    decider = asyncio.create_task(decide_when_pending(machine, 2, decide))
    agent = support_agent(BIG_REFUND, ("close_account", {"customer": "c-9"}))
    await AgentApprovals(machine).run(agent, "refund and close")
    await decider
    assert [d[0] for d in DONE] == [first]
    refused = "close_account" if first == "refund" else "refund"
    assert "not this one" in str(SEEN[refused][0])


async def test_a_call_below_the_limit_runs_without_asking(machine: HITLStateMachine) -> None:
    agent = support_agent(BIG_REFUND, ("refund", {"order": "B-7", "amount": 20}))

    async def approve(pending: list[TaskContext]) -> None:
        await machine.approve(pending[0].task_id, "alice")

    decider = asyncio.create_task(decide_when_pending(machine, 1, approve))
    await AgentApprovals(machine).run(agent, "two refunds")
    await decider
    assert sorted(d[1]["amount"] for d in DONE) == [20, 500]
    assert len(await machine.get_all_tasks()) == 2  # the run and the one big refund


async def test_the_same_pause_recorded_again_makes_no_duplicate_tasks(machine: HITLStateMachine) -> None:
    adapter = AgentApprovals(machine)
    agent = support_agent(BIG_REFUND, ("close_account", {"customer": "c-9"}))
    first = await adapter.start(agent, "refund and close", run_id="r-dup")
    # The agent process is restarted and runs the same prompt again: the model makes the same
    # calls at the same turn, so the adapter finds the tasks it already made.
    again = await adapter.start(agent, "refund and close", run_id="r-dup")
    assert isinstance(first, PausedRun) and isinstance(again, PausedRun)
    assert sorted(again.task_ids) == sorted(first.task_ids)
    assert len(await machine.get_all_tasks()) == 3


async def test_resume_without_waiting_continues_only_a_fully_decided_batch(machine: HITLStateMachine) -> None:
    adapter = AgentApprovals(machine)
    agent = support_agent(BIG_REFUND, ("close_account", {"customer": "c-9"}))
    paused = await adapter.start(agent, "refund and close", run_id="r2")
    await machine.approve(paused.task_ids[0], "alice")
    still = await adapter.resume(agent, "r2", wait=False)
    assert isinstance(still, PausedRun) and DONE == []
    await machine.approve(paused.task_ids[1], "alice")
    result = await adapter.resume(agent, "r2", wait=False)
    assert result.output.startswith("answered") and len(DONE) == 2
    assert (await machine.get_task(parent_task_id("r2"))).state is TaskState.COMPLETED


async def test_in_run_capability_waits_for_decisions_without_ending_the_run(machine: HITLStateMachine) -> None:
    adapter = AgentApprovals(machine, agent="support")
    agent = support_agent(BIG_REFUND, ("ask_customer", {"question": "Which card?"}), deferred_output=False)

    async def decide(pending: list[TaskContext]) -> None:
        by_tool = {t.interrupt_point.action.name: t.task_id for t in pending}
        await machine.edit(by_tool["refund"], {"order": "A-1001", "amount": 250}, "alice")
        await machine.respond(by_tool["ask_customer"], "Mastercard", "alice")

    decider = asyncio.create_task(decide_when_pending(machine, 2, decide))
    result = await agent.run("refund", capabilities=[adapter.capability(run_id="inrun")])
    await decider
    assert isinstance(result.output, str) and result.output.startswith("answered")
    assert DONE == [("refund", {"order": "A-1001", "amount": 250})]
    assert SEEN["ask_customer"] == ("Mastercard", "success")
    tasks = [t for t in await machine.get_all_tasks() if t.parent_id == parent_task_id("inrun")]
    assert len(tasks) == 2 and {t.state for t in tasks} == {TaskState.COMPLETED}


# -- bad input ----------------------------------------------------------------------------------


async def test_resuming_an_unknown_run_is_a_clear_error(machine: HITLStateMachine) -> None:
    with pytest.raises(TaskNotFoundError, match="no paused Pydantic AI run 'nope'"):
        await AgentApprovals(machine).resume(support_agent(BIG_REFUND), "nope")


async def test_a_paused_run_whose_stored_history_is_damaged_is_a_clear_error(machine: HITLStateMachine) -> None:
    adapter = AgentApprovals(machine)
    paused = await adapter.start(support_agent(BIG_REFUND), "refund", run_id="r3")
    task = await machine.get_task(paused.task_ids[0])
    broken = dict(task.metadata[META_KEY], history=[{"kind": "not-a-message"}])
    # A task made by something else (or edited by hand) with unusable state: refused, not guessed.
    await machine.start_task(
        "pydantic-ai:r3:9:x", {META_KEY: {**broken, "turn": 9}}, framework="pydantic-ai", run_id="r3"
    )
    await machine.request_approval("pydantic-ai:r3:9:x", "damaged")
    with pytest.raises(HITLError, match="cannot be restored"):
        await adapter.resume(support_agent(BIG_REFUND), "r3", wait=False)
    assert (await machine.get_task(paused.task_ids[0])).state is TaskState.AWAITING_APPROVAL


async def test_agent_whose_output_type_cannot_hold_a_pause_fails_before_asking(machine: HITLStateMachine) -> None:
    from pydantic_ai.exceptions import UserError

    with pytest.raises(UserError, match="DeferredToolRequests"):
        await AgentApprovals(machine).run(support_agent(BIG_REFUND, deferred_output=False), "refund")
    assert await machine.get_pending_approvals() == []


def test_capabilities_name_what_travels_back() -> None:
    assert CAPABILITIES.decisions == ("approve", "reject", "edit", "respond")
    assert CAPABILITIES.cross_process_resume


async def test_a_run_that_raises_after_the_decision_is_asked_again_and_an_approved_retry_continues_it(
    machine: HITLStateMachine,
) -> None:
    from pa_support import scripted_model
    from pydantic_ai import Agent, DeferredToolRequests

    attempts: list[str] = []
    agent: Agent[None, object] = Agent(
        scripted_model(("deploy", {"env": "prod"})), output_type=[str, DeferredToolRequests]
    )

    @agent.tool_plain(requires_approval=True)
    def deploy(env: str) -> str:
        attempts.append(env)
        if len(attempts) == 1:
            raise RuntimeError("the deploy target is down")
        return f"deployed {env}"

    paused = await AgentApprovals(machine, agent="ops").start(agent, "deploy", run_id="r-retry")
    [task_id] = paused.task_ids
    await machine.approve(task_id, "alice")
    with pytest.raises(RuntimeError, match="the deploy target is down"):
        await AgentApprovals(machine).resume(agent, "r-retry", wait=False)
    assert (await machine.get_task(task_id)).state is TaskState.FAILED
    retry = await machine.get_task(f"{task_id}~1")
    assert retry.state is TaskState.AWAITING_APPROVAL
    assert retry.interrupt_point.allowed_decisions == ["approve", "reject"]

    await machine.approve(retry.task_id, "bob")
    result = await AgentApprovals(machine).resume(agent, "r-retry", wait=False)  # another process, say
    assert result.output.startswith("answered") and attempts == ["prod", "prod"]
    assert SEEN["deploy"][0] == "deployed prod"
    states = {t.task_id: t.state for t in await machine.get_all_tasks()}
    assert states == {
        parent_task_id("r-retry"): TaskState.COMPLETED,
        task_id: TaskState.FAILED,
        retry.task_id: TaskState.COMPLETED,
    }
