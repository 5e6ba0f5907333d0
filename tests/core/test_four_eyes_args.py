"""Under four eyes every approval binds to the args it saw: an edit starts the count again."""

from __future__ import annotations

import asyncio

import pytest

from hitl_core import (
    ConflictError,
    DecisionType,
    HITLStateMachine,
    NotAuthorizedError,
    TaskState,
    requires_approval,
)
from hitl_core.canonical import fingerprint

ORIGINAL = {"account": "ops", "amount": 100}
EDITED = {"account": "ops", "amount": 10_000}


async def ask(m: HITLStateMachine, task_id: str = "t") -> str:
    await m.start_task(task_id)
    task = await m.request_approval(
        task_id, "refund", action="refund", args=ORIGINAL, required_approvals=2, severity="critical"
    )
    assert task.interrupt_point is not None and task.interrupt_point.args_fingerprint == fingerprint(ORIGINAL)
    return fingerprint(ORIGINAL)


async def test_each_partial_approval_records_the_fingerprint_it_saw(machine: HITLStateMachine) -> None:
    seen = await ask(machine)
    first = await machine.approve("t", "alice", args_fingerprint=seen)
    assert first.state == TaskState.AWAITING_APPROVAL
    assert [(a.actor.id, a.args_fingerprint) for a in first.approvals] == [("alice", seen)]


async def test_edit_after_partial_approval_restarts_the_count(machine: HITLStateMachine) -> None:
    seen = await ask(machine)
    await machine.approve("t", "alice", args_fingerprint=seen)
    edited = await machine.edit("t", EDITED, "bob", args_fingerprint=seen)
    # bob's edit is the first approval of the new args; alice never saw them
    assert edited.state == TaskState.AWAITING_APPROVAL
    assert [(a.actor.id, a.type, a.args_fingerprint) for a in edited.approvals] == [
        ("bob", DecisionType.EDIT, fingerprint(EDITED))
    ]
    interrupt = edited.interrupt_point
    assert interrupt is not None and interrupt.action is not None
    assert interrupt.action.args == EDITED and interrupt.args_fingerprint == fingerprint(EDITED)
    assert edited.history[-1]["action"] == "approve_partial"
    # what alice saw before is no longer on the table
    with pytest.raises(ConflictError, match="args changed since they were shown"):
        await machine.approve("t", "alice", args_fingerprint=seen)
    # the editor can't be the second pair of eyes on his own args
    with pytest.raises(NotAuthorizedError, match="four eyes"):
        await machine.approve("t", "bob", args_fingerprint=fingerprint(EDITED))
    done = await machine.approve("t", "alice", args_fingerprint=fingerprint(EDITED))
    assert done.state == TaskState.APPROVED and done.decision is not None
    # the agent gets the args both people approved
    assert (done.decision.actor.id, done.decision.type, done.decision.edited_args) == ("alice", "edit", EDITED)
    assert [a.actor.id for a in done.approvals] == ["bob", "alice"]
    decision = await machine.wait_for_decision("t", timeout=5)
    assert decision.edited_args == EDITED


async def test_edit_as_first_approval_reaches_the_agent(machine: HITLStateMachine) -> None:
    """Before, bob's edit as the first of two approvals was lost: alice's approve carried no args."""
    await ask(machine)
    await machine.edit("t", EDITED, "bob")
    done = await machine.approve("t", "alice")
    assert done.state == TaskState.APPROVED and done.decision is not None
    assert done.decision.edited_args == EDITED


async def test_edit_that_changes_nothing_is_a_second_approval(machine: HITLStateMachine) -> None:
    await ask(machine)
    await machine.approve("t", "alice")
    done = await machine.edit("t", dict(ORIGINAL), "bob")
    assert done.state == TaskState.APPROVED and done.decision is not None
    assert done.decision.edited_args == ORIGINAL


async def test_decorated_function_runs_with_the_args_two_people_approved(machine: HITLStateMachine) -> None:
    ran: list[int] = []

    @requires_approval(machine=machine, required_approvals=2, severity="critical")
    async def refund(account: str, amount: int) -> None:
        ran.append(amount)

    call = asyncio.create_task(refund("ops", 100))
    for _ in range(2000):
        pending = await machine.get_pending_approvals()
        if pending:
            break
        await asyncio.sleep(0.005)
    [task] = pending
    await machine.approve(task.task_id, "alice")
    await machine.edit(task.task_id, {"amount": 5}, "bob")
    assert not call.done()
    with pytest.raises(NotAuthorizedError):
        await machine.approve(task.task_id, "bob")
    await machine.approve(task.task_id, "carol")
    await asyncio.wait_for(call, 10)
    assert ran == [5]


async def test_a_response_given_under_four_eyes_reaches_the_agent_after_the_second_approval(
    machine: HITLStateMachine,
) -> None:
    """alice answers, bob approves: the agent gets alice's answer, not a bare approval."""
    await machine.start_task("q")
    await machine.request_approval("q", "which account?", required_approvals=2, severity="critical")
    first = await machine.respond("q", {"account": "ops"}, "alice")
    assert first.state == TaskState.AWAITING_APPROVAL
    done = await machine.approve("q", "bob")
    assert done.state == TaskState.APPROVED and done.decision is not None
    assert done.decision.type == DecisionType.RESPOND and done.decision.response == {"account": "ops"}
    assert done.decision.actor.id == "bob"
    assert (await machine.verify()).ok  # the replayed snapshot carries the response too


async def test_an_edit_and_a_response_under_four_eyes_both_reach_the_agent(machine: HITLStateMachine) -> None:
    seen = await ask(machine)
    await machine.edit("t", EDITED, "alice", args_fingerprint=seen)
    done = await machine.respond("t", "go ahead with the larger refund", "bob")
    assert done.state == TaskState.APPROVED and done.decision is not None
    assert done.decision.type == DecisionType.EDIT and done.decision.edited_args == EDITED
    assert done.decision.response == "go ahead with the larger refund"
    assert (await machine.verify()).ok
