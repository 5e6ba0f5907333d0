"""The smolagents guard with real smolagents agents (ToolCallingAgent, CodeAgent) on an offline model.

The agent runs on its own thread with its own machine, as in a user's program; a person decides
through a second machine on the same SQLite file (another process's view of the store).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hitl_smolagents import ScriptedModel, SmolagentsApprovals
from smol_helpers import DEADLINE, all_tasks, code_agent, decide, running, store_url, tool_agent, waiting_tasks
from smolagents import ActionStep

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_core.errors import PayloadError


def observations(agent: object) -> str:
    return "\n".join(s.observations or "" for s in agent.memory.steps if isinstance(s, ActionStep))  # type: ignore[attr-defined]


# -- ToolCallingAgent ---------------------------------------------------------------------------


async def test_an_approved_tool_call_runs_and_its_output_is_what_the_model_reads(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 5})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay bob"))
    (task,) = await waiting_tasks(tmp_path)
    assert task.framework == "smolagents" and task.run_id == "r1" and task.agent == "payments"
    assert task.interrupt_point is not None and task.interrupt_point.action is not None
    assert task.interrupt_point.action.name == "transfer"
    assert task.interrupt_point.action.args == {"to": "bob", "amount": 5}
    assert task.interrupt_point.allowed_decisions == ["approve", "reject", "edit"]
    assert task.task_id.startswith("r1:1:call_0_0-")
    assert transfers == []  # nothing runs before a person decides
    await decide(tmp_path, task.task_id, "approve", "alice")
    assert await asyncio.wait_for(run, DEADLINE) == "done"
    assert transfers == [("bob", 5)]
    assert "sent 5 EUR to bob" in model.last_seen_text()
    done = (await all_tasks(tmp_path))[task.task_id]
    assert done.state is TaskState.COMPLETED
    assert done.result == {"decision": "approve", "observation": "sent 5 EUR to bob"}


async def test_a_rejected_call_does_not_run_and_the_reason_reaches_the_models_memory(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": "eve", "amount": 900})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay eve"))
    (task,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, task.task_id, "reject", "alice", "eve is not a known payee")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == []
    reason = "Tool call rejected by alice: eve is not a known payee"
    assert reason in observations(agent)  # the step's observation in the agent's memory
    assert reason in model.last_seen_text()  # and what the model read on its next step
    assert (await all_tasks(tmp_path))[task.task_id].state is TaskState.COMPLETED


async def test_an_edited_call_runs_with_the_edited_arguments(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 500})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay bob"))
    (task,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, task.task_id, "edit", {"to": "bob", "amount": 50}, "alice")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == [("bob", 50)]
    assert "sent 50 EUR to bob" in model.last_seen_text()


async def test_the_calls_of_one_step_are_each_asked_and_each_runs_once_decided(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 5}), ("transfer", {"to": "eve", "amount": 900})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay both"))
    to_bob, to_eve = await waiting_tasks(tmp_path, 2)
    assert to_bob.task_id.startswith("r1:1:call_0_0-") and to_eve.task_id.startswith("r1:1:call_0_1-")
    await decide(tmp_path, to_bob.task_id, "approve", "alice")
    give_up = asyncio.get_running_loop().time() + DEADLINE
    while transfers != [("bob", 5)]:  # smolagents runs a step's calls in parallel threads
        assert asyncio.get_running_loop().time() < give_up, transfers
        await asyncio.sleep(0.05)
    await decide(tmp_path, to_eve.task_id, "reject", "alice", "too much")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == [("bob", 5)]
    assert "Tool call rejected by alice: too much" in model.last_seen_text()


async def test_a_second_run_of_the_same_agent_is_asked_again_not_given_the_first_runs_decision(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    # smolagents restarts step numbers and the model's call ids on every run: the same call again
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 5})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay bob"))
    (first,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, first.task_id, "approve", "alice")
    await asyncio.wait_for(run, DEADLINE)
    model.seen.clear()  # the same script from the start
    run = running(lambda: agent.run("pay bob"))
    (second,) = await waiting_tasks(tmp_path)
    assert second.task_id != first.task_id and second.task_id.startswith("r1:1:call_0_0-")
    assert transfers == [("bob", 5)]  # the second call waits for its own decision
    await decide(tmp_path, second.task_id, "reject", "alice", "paid already")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == [("bob", 5)]


async def test_final_answer_and_tools_left_out_of_tools_run_without_asking(
    tmp_path: Path, agent_machine: HITLStateMachine
) -> None:
    approvals = SmolagentsApprovals(agent_machine, tools=["transfer"], run_id="r2")
    model = ScriptedModel([[("lookup", {"name": "bob"})]])
    agent = approvals.guard(tool_agent(model))
    assert await asyncio.wait_for(asyncio.to_thread(agent.run, "who is bob"), DEADLINE) == "done"
    assert "bob is a known payee" in model.last_seen_text()
    assert await all_tasks(tmp_path) == {}


async def test_nobody_deciding_by_the_deadline_is_a_rejection_the_model_reads(
    tmp_path: Path, agent_machine: HITLStateMachine, transfers: list[tuple[str, int]]
) -> None:
    approvals = SmolagentsApprovals(agent_machine, timeout=0.5, run_id="r3")
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 5})]])
    agent = approvals.guard(tool_agent(model))
    await asyncio.wait_for(asyncio.to_thread(agent.run, "pay bob"), DEADLINE)
    assert transfers == []
    assert "Tool call rejected by hitl:timeout" in model.last_seen_text()


# -- CodeAgent ----------------------------------------------------------------------------------


async def test_approved_code_runs(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    code = 'print(transfer(to="bob", amount=5))'
    model = ScriptedModel([code], code=True)
    agent = approvals.guard(code_agent(model))
    run = running(lambda: agent.run("pay bob"))
    (task,) = await waiting_tasks(tmp_path)
    assert task.interrupt_point is not None and task.interrupt_point.action is not None
    assert task.interrupt_point.action.name == "python_interpreter"
    assert task.interrupt_point.action.args == {"code": code}
    assert task.agent == "coder" and task.task_id.startswith("r1:1:code-")
    await decide(tmp_path, task.task_id, "approve", "alice")
    (final,) = await waiting_tasks(tmp_path)  # the final answer is code too: it is asked as well
    assert final.interrupt_point is not None and final.interrupt_point.action is not None
    assert final.interrupt_point.action.args == {"code": 'final_answer("done")'}
    await decide(tmp_path, final.task_id, "approve", "alice")
    assert await asyncio.wait_for(run, DEADLINE) == "done"
    assert transfers == [("bob", 5)]
    assert "sent 5 EUR to bob" in model.last_seen_text()


async def test_edited_code_is_the_code_that_runs_and_the_model_is_told(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel(['print(transfer(to="eve", amount=900))'], code=True)
    agent = approvals.guard(code_agent(model))
    run = running(lambda: agent.run("pay eve"))
    (task,) = await waiting_tasks(tmp_path)
    edited = 'print(transfer(to="bob", amount=9))'
    await decide(tmp_path, task.task_id, "edit", {"code": edited}, "alice")
    (final,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, final.task_id, "approve", "alice")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == [("bob", 9)]
    seen = model.last_seen_text()
    assert "sent 9 EUR to bob" in seen and "alice edited the code before it ran" in seen


async def test_rejected_code_does_not_run_and_the_model_reads_why(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel(['print(transfer(to="eve", amount=900))'], code=True)
    agent = approvals.guard(code_agent(model))
    run = running(lambda: agent.run("pay eve"))
    (task,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, task.task_id, "reject", "alice", "no transfers today")
    (final,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, final.task_id, "approve", "alice")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == []
    reason = "Code execution rejected by alice: no transfers today\nThe code did not run."
    assert reason in observations(agent) and reason in model.last_seen_text()


async def test_an_edit_without_code_to_run_fails_the_task_runs_nothing_and_the_model_reads_why(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel(['print(transfer(to="eve", amount=900))'], code=True)
    agent = approvals.guard(code_agent(model))
    run = running(lambda: agent.run("pay eve"))
    (task,) = await waiting_tasks(tmp_path)
    await decide(tmp_path, task.task_id, "edit", {"script": "print(1)"}, "alice")
    (final,) = await waiting_tasks(tmp_path)  # smolagents hands the error to the model, which goes on
    await decide(tmp_path, final.task_id, "approve", "alice")
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == []
    assert "the edit must give the code to run as a string under 'code'" in model.last_seen_text()
    failed = (await all_tasks(tmp_path))[task.task_id]
    assert failed.state is TaskState.FAILED and "nothing ran" in (failed.error or "")


# -- bad input ----------------------------------------------------------------------------------


async def test_arguments_over_the_payload_limit_stop_the_run_with_a_hitl_error_and_nothing_runs(
    tmp_path: Path, transfers: list[tuple[str, int]]
) -> None:
    machine = HITLStateMachine(store_url(tmp_path), load_entrypoints=False, max_payload_bytes=4096)
    try:
        approvals = SmolagentsApprovals(machine, run_id="big")
        model = ScriptedModel([[("transfer", {"to": "x" * 5000, "amount": 5})]])
        agent = approvals.guard(tool_agent(model))
        with pytest.raises(PayloadError, match="over the limit of 4,096 bytes"):
            await asyncio.wait_for(asyncio.to_thread(agent.run, "pay"), DEADLINE)
    finally:
        machine.sync.close_machine()
    assert transfers == []
    (failed,) = (await all_tasks(tmp_path)).values()
    assert failed.state is TaskState.FAILED and failed.decision is None
    # the base's wording of why a request was not asked; the payload error's text is the machine's
    assert (failed.error or "").endswith(
        ": action args is 5,020 bytes, over the limit of 4,096 bytes (HITL_MAX_PAYLOAD_BYTES)"
    )


async def test_arguments_that_are_not_json_stop_the_run_with_a_hitl_error_and_nothing_runs(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": object(), "amount": 5})]])
    agent = approvals.guard(tool_agent(model))
    with pytest.raises(PayloadError, match="action args is not JSON-serialisable: object is not JSON-serialisable"):
        await asyncio.wait_for(asyncio.to_thread(agent.run, "pay"), DEADLINE)
    assert transfers == []
    (failed,) = (await all_tasks(tmp_path)).values()
    assert failed.state is TaskState.FAILED and failed.decision is None


async def test_code_over_the_payload_limit_does_not_run_and_the_model_reads_why(
    tmp_path: Path, transfers: list[tuple[str, int]]
) -> None:
    machine = HITLStateMachine(store_url(tmp_path), load_entrypoints=False, max_payload_bytes=4096)
    try:
        approvals = SmolagentsApprovals(machine, run_id="big", timeout=0.5)
        code = f'print(transfer(to="{"x" * 5000}", amount=5))'
        model = ScriptedModel([code], code=True)
        agent = approvals.guard(code_agent(model))
        # smolagents turns an executor's exception into the step's error; the final answer's code
        # then waits for nobody, and its deadline rejects it.
        await asyncio.wait_for(asyncio.to_thread(agent.run, "pay"), DEADLINE)
    finally:
        machine.sync.close_machine()
    assert transfers == []
    assert "over the limit of 4,096 bytes" in model.last_seen_text()
    (failed,) = [t for t in (await all_tasks(tmp_path)).values() if t.task_id.startswith("big:1:")]
    assert failed.state is TaskState.FAILED and failed.decision is None


def test_guarding_an_agent_twice_is_refused(approvals: SmolagentsApprovals) -> None:
    agent = approvals.guard(tool_agent(ScriptedModel([])))
    with pytest.raises(HITLError, match="guarded already"):
        approvals.guard(agent)
    approvals.unguard(agent)
    assert "execute_tool_call" not in vars(agent) and "_hitl_guard" not in vars(agent)


def test_an_agent_that_is_neither_kind_is_refused(approvals: SmolagentsApprovals) -> None:
    with pytest.raises(HITLError, match="guards a ToolCallingAgent or a CodeAgent"):
        approvals.guard(object())  # type: ignore[arg-type]
