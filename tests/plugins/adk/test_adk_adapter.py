"""The Google ADK adapter on real ADK (Runner, LlmAgent, FunctionTool, session services), offline."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from adk_support import CLOSE, FAIL_NEXT, PAY_BOB, PAY_EVE, REFUND, runner, seen, when_pending
from google.adk.events.event import Event
from google.adk.sessions import DatabaseSessionService, InMemorySessionService
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types
from hitl_adk import AdkApprovals, AdkRunResult, PausedRun, PendingConfirmation
from hitl_adk.adapter import REQUEST_CONFIRMATION, confirmation_message, pending_confirmations

from hitl_core import (
    Actor,
    Decision,
    DecisionType,
    HITLError,
    HITLStateMachine,
    NotAuthorizedError,
    PayloadError,
    TaskContext,
    TaskNotFoundError,
    TaskState,
)
from hitl_core.adapters import RetryDeclinedError

Done = list[tuple[str, dict[str, Any]]]


async def test_approve_runs_the_call_and_the_model_reads_its_result(machine: HITLStateMachine, done: Done) -> None:
    adk, model = runner([PAY_BOB, PAY_EVE])
    seen_tasks: list[TaskContext] = []

    async def approve(pending: list[TaskContext]) -> None:
        seen_tasks.extend(pending)
        assert done == [("transfer", {"to": "eve", "amount": 5})]  # under the limit: ran at once
        await machine.approve(pending[0].task_id, "alice")

    result, _ = await asyncio.gather(
        AdkApprovals(machine, adk).run("u1", "pay bob and eve", session_id="s-approve"),
        when_pending(machine, 1, approve),
    )
    assert isinstance(result, AdkRunResult)
    assert done == [("transfer", {"to": "eve", "amount": 5}), ("transfer", {"to": "bob", "amount": 500})]
    assert seen(model)["call-bob"] == {"result": "sent 500 EUR to bob"}
    assert "sent 500 EUR to bob" in result.text
    [task] = seen_tasks
    interrupt = task.interrupt_point
    assert interrupt is not None and interrupt.action is not None
    assert (interrupt.action.name, interrupt.action.args) == ("transfer", {"to": "bob", "amount": 500})
    assert interrupt.allowed_decisions == ["approve", "reject", "edit"]
    assert interrupt.context["function_call_id"] == "call-bob"
    assert task.framework == "adk" and task.run_id == "s-approve" and task.parent_id == "adk:s-approve"
    assert task.agent == "payer"  # the ADK agent that made the call
    assert task.task_id == f"adk:s-approve:{interrupt.context['confirmation_id']}"
    states = {t.task_id: t.state for t in await machine.get_all_tasks()}
    assert states == {"adk:s-approve": TaskState.COMPLETED, task.task_id: TaskState.COMPLETED}


async def test_reject_tells_the_model_the_reason_and_the_tool_does_not_run(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, model = runner([PAY_BOB, CLOSE])

    async def decide(pending: list[TaskContext]) -> None:
        by_tool = {t.interrupt_point.action.name: t.task_id for t in pending}
        await machine.reject(by_tool["transfer"], "alice", "not on a Friday")
        await machine.reject(by_tool["close_account"], "bob")

    result, _ = await asyncio.gather(
        AdkApprovals(machine, adk).run("u1", "pay and close", session_id="s-reject"), when_pending(machine, 2, decide)
    )
    assert done == []
    assert seen(model)["call-bob"] == {"error": "The transfer call was rejected by alice: not on a Friday"}
    assert seen(model)["call-close"] == {"error": "The close_account call was rejected by bob."}
    assert "rejected by alice: not on a Friday" in result.text


async def test_edit_runs_the_call_with_the_edited_args_only(machine: HITLStateMachine, done: Done) -> None:
    adk, model = runner([PAY_BOB])

    async def edit(pending: list[TaskContext]) -> None:
        await machine.edit(pending[0].task_id, {"to": "bob", "amount": 90}, "alice")

    await asyncio.gather(
        AdkApprovals(machine, adk).run("u1", "pay bob", session_id="s-edit"), when_pending(machine, 1, edit)
    )
    assert done == [("transfer", {"to": "bob", "amount": 90})]
    assert seen(model)["call-bob"] == {"result": "sent 90 EUR to bob"}


async def test_a_tool_that_requests_confirmation_itself_is_asked_and_approved(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, model = runner([REFUND])
    asked: list[TaskContext] = []

    async def approve(pending: list[TaskContext]) -> None:
        asked.extend(pending)
        await machine.approve(pending[0].task_id, "alice")

    await asyncio.gather(
        AdkApprovals(machine, adk).run("u1", "refund", session_id="s-dyn"), when_pending(machine, 1, approve)
    )
    assert done == [("refund", {"order": "A-1", "amount": 80})]
    assert seen(model)["call-refund"] == {"result": "refunded 80 EUR on A-1"}
    assert asked[0].interrupt_point.context["hint"] == "Refund 80 EUR on A-1?"


async def test_two_pauses_in_one_run_are_asked_one_after_the_other(machine: HITLStateMachine, done: Done) -> None:
    adk, _ = runner([PAY_BOB], [CLOSE])
    adapter = AdkApprovals(machine, adk)

    async def approve(pending: list[TaskContext]) -> None:
        await machine.approve(pending[0].task_id, "alice")

    async def approve_each() -> None:
        for _ in range(2):
            await when_pending(machine, 1, approve)

    await asyncio.gather(adapter.run("u1", "pay, then close", session_id="s-two"), approve_each())
    assert [name for name, _ in done] == ["transfer", "close_account"]
    assert {t.state for t in await machine.get_all_tasks()} == {TaskState.COMPLETED}
    assert len(await machine.get_all_tasks()) == 3  # the run and one task per pause


async def test_a_deadline_applies_the_default_rejection(machine: HITLStateMachine, done: Done) -> None:
    adk, model = runner([PAY_BOB])
    await AdkApprovals(machine, adk, timeout=0.2).run("u1", "pay bob", session_id="s-late")
    assert done == []
    assert "rejected" in seen(model)["call-bob"]["error"]


async def test_start_returns_at_the_pause_and_resume_continues_from_a_sqlite_session_service(
    machine: HITLStateMachine, tmp_path: Path, done: Done
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    first, _ = runner([PAY_BOB, CLOSE], sessions=DatabaseSessionService(url))
    paused = await AdkApprovals(machine, first).start("u1", "pay and close", session_id="s-db")
    assert isinstance(paused, PausedRun) and len(paused.task_ids) == 2
    # The same pause asked again finds the same tasks.
    again = await AdkApprovals(machine, first).resume("u1", "s-db", wait=False)
    assert isinstance(again, PausedRun) and sorted(again.task_ids) == sorted(paused.task_ids)

    by_tool = {(await machine.get_task(t)).interrupt_point.action.name: t for t in paused.task_ids}
    await machine.approve(by_tool["transfer"], "alice")
    await machine.edit(by_tool["close_account"], {"customer": "c-10"}, "bob")
    # A fresh runner and session service on the same file: nothing kept in memory.
    second, model = runner([PAY_BOB, CLOSE], sessions=DatabaseSessionService(url))
    result = await AdkApprovals(machine, second).resume("u1", "s-db")
    assert isinstance(result, AdkRunResult)
    assert done == [("transfer", {"to": "bob", "amount": 500}), ("close_account", {"customer": "c-10"})]
    assert seen(model)["call-close"] == {"result": "closed c-10"}
    with pytest.raises(TaskNotFoundError, match="waits on no confirmation"):
        await AdkApprovals(machine, second).resume("u1", "s-db")  # replayed: nothing runs twice
    assert len(done) == 2


async def test_of_two_resumers_exactly_one_answers_the_pause(machine: HITLStateMachine, done: Done) -> None:
    sessions = InMemorySessionService()
    adk, _ = runner([PAY_BOB], sessions=sessions)
    paused = await AdkApprovals(machine, adk).start("u1", "pay bob", session_id="s-race")
    await machine.approve(paused.task_ids[0], "alice")
    results = await asyncio.gather(
        AdkApprovals(machine, adk).resume("u1", "s-race"),
        AdkApprovals(machine, adk).resume("u1", "s-race"),
        return_exceptions=True,
    )
    # The loser finds the pause claimed (or, if it looks later, already answered): it sends nothing.
    assert sum(isinstance(r, AdkRunResult) for r in results) == 1
    assert sum(isinstance(r, HITLError) for r in results) == 1
    assert done == [("transfer", {"to": "bob", "amount": 500})]


async def _claim_and_send_then_die(machine: HITLStateMachine, adk: Any, session_id: str, send: bool) -> list[str]:
    """What a process does up to its crash: claim the decided pause and (maybe) answer ADK."""
    dying = AdkApprovals(machine, adk)
    session = await adk.session_service.get_session(app_name=adk.app_name, user_id="u1", session_id=session_id)
    pending = pending_confirmations(session)
    task_ids = {p.confirmation_id: f"adk:{session_id}:{p.confirmation_id}" for p in pending}
    decided = await dying.decisions(list(task_ids.values()))
    message = confirmation_message(pending, dict(zip(task_ids, decided, strict=True)), task_ids)
    claimed = await dying.claim(list(task_ids.values()))
    assert claimed is not None
    if send:
        async for _ in adk.run_async(user_id="u1", session_id=session_id, new_message=message):
            pass
    return claimed  # … and dies here, before delivered()


async def test_a_process_that_died_after_adk_took_its_answer_is_settled_not_sent_again(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, _ = runner([PAY_BOB])
    paused = await AdkApprovals(machine, adk).start("u1", "pay bob", session_id="s-died")
    await machine.approve(paused.task_ids[0], "alice")
    await _claim_and_send_then_die(machine, adk, "s-died", send=True)
    assert (await machine.get_task(paused.task_ids[0])).state is TaskState.RUNNING
    with pytest.raises(TaskNotFoundError, match="waits on no confirmation"):
        await AdkApprovals(machine, adk).resume("u1", "s-died")  # it might still be running: left alone
    assert (await machine.get_task(paused.task_ids[0])).state is TaskState.RUNNING
    result = await AdkApprovals(machine, adk).resume("u1", "s-died", takeover=True)
    assert isinstance(result, AdkRunResult)
    assert done == [("transfer", {"to": "bob", "amount": 500})]  # once
    assert {t.task_id: t.state for t in await machine.get_all_tasks()} == {
        "adk:s-died": TaskState.COMPLETED,
        paused.task_ids[0]: TaskState.COMPLETED,
    }


async def test_a_pause_claimed_by_a_process_that_died_before_sending_needs_takeover(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, _ = runner([PAY_BOB])
    paused = await AdkApprovals(machine, adk).start("u1", "pay bob", session_id="s-claimed")
    await machine.approve(paused.task_ids[0], "alice")
    await _claim_and_send_then_die(machine, adk, "s-claimed", send=False)
    with pytest.raises(HITLError, match="another process claimed the decisions of ADK session 's-claimed'"):
        await AdkApprovals(machine, adk).resume("u1", "s-claimed")
    assert done == []
    await AdkApprovals(machine, adk).resume("u1", "s-claimed", takeover=True)
    assert done == [("transfer", {"to": "bob", "amount": 500})]


async def test_a_call_that_raises_is_asked_again_and_an_approved_retry_runs_the_same_edit(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, model = runner([PAY_BOB])
    adapter = AdkApprovals(machine, adk)
    paused = await adapter.start("u1", "pay bob", session_id="s-retry")
    await machine.edit(paused.task_ids[0], {"to": "bob", "amount": 90}, "alice")
    FAIL_NEXT.append(RuntimeError("payment provider down"))
    with pytest.raises(RuntimeError, match="payment provider down"):
        await adapter.resume("u1", "s-retry")
    assert done == []
    failed = await machine.get_task(paused.task_ids[0])
    assert failed.state is TaskState.FAILED and "payment provider down" in (failed.error or "")
    [retry] = await machine.get_pending_approvals()
    assert retry.task_id == paused.task_ids[0] + "~1"
    assert retry.interrupt_point.context["retry"]["decision"] == "edit"

    await machine.approve(retry.task_id, "carol")  # carry alice's edit again, not a new decision
    result = await AdkApprovals(machine, adk).resume("u1", "s-retry")  # a fresh adapter, as another process would
    assert isinstance(result, AdkRunResult)
    assert done == [("transfer", {"to": "bob", "amount": 90})]
    assert seen(model)["call-bob"] == {"result": "sent 90 EUR to bob"}
    assert (await machine.get_task(retry.task_id)).state is TaskState.COMPLETED


async def test_a_declined_retry_gives_the_run_up_and_nothing_runs(machine: HITLStateMachine, done: Done) -> None:
    adk, _ = runner([PAY_BOB])
    adapter = AdkApprovals(machine, adk)
    paused = await adapter.start("u1", "pay bob", session_id="s-declined")
    await machine.approve(paused.task_ids[0], "alice")
    FAIL_NEXT.append(RuntimeError("payment provider down"))
    with pytest.raises(RuntimeError):
        await adapter.resume("u1", "s-declined")
    await machine.reject(paused.task_ids[0] + "~1", "carol", "we pay by hand")
    with pytest.raises(RetryDeclinedError, match="carol declined to retry the failed resume: we pay by hand"):
        await adapter.resume("u1", "s-declined")
    assert done == []
    assert (await machine.get_task("adk:s-declined")).state is TaskState.FAILED


# -- bad input ------------------------------------------------------------------------------------


async def test_a_runner_without_the_confirmation_plugin_is_refused(machine: HITLStateMachine) -> None:
    adk, _ = runner([PAY_BOB], plugin=False)
    with pytest.raises(HITLError, match=r"no hitl_adk\.ConfirmationPlugin"):
        AdkApprovals(machine, adk)


def _pending(confirmation_id: str = "conf-1") -> PendingConfirmation:
    return PendingConfirmation(
        confirmation_id, "inv-1", "call-bob", "transfer", {"to": "bob", "amount": 500}, "", "payer"
    )


def _decision(kind: DecisionType, **fields: Any) -> Decision:
    return Decision(type=kind, actor=Actor(id="alice"), **fields)


def test_a_decision_for_an_unknown_confirmation_id_is_refused() -> None:
    decisions = {"conf-1": _decision(DecisionType.APPROVE), "conf-forged": _decision(DecisionType.APPROVE)}
    with pytest.raises(HITLError, match="no pending ADK tool confirmation 'conf-forged'"):
        confirmation_message([_pending()], decisions)


def test_a_pause_with_an_undecided_confirmation_is_not_answered_in_part() -> None:
    with pytest.raises(HITLError, match="no decision for ADK tool confirmation 'conf-2'"):
        confirmation_message([_pending(), _pending("conf-2")], {"conf-1": _decision(DecisionType.APPROVE)})


def test_a_respond_decision_cannot_be_carried_into_a_confirmation() -> None:
    with pytest.raises(HITLError, match="cannot carry 'respond' back"):
        confirmation_message([_pending()], {"conf-1": _decision(DecisionType.RESPOND, response="yes")})


async def test_an_entry_point_guard_refuses_respond_on_an_adk_task_widened_by_hand() -> None:
    machine = HITLStateMachine("memory://")  # loads the adapters' entry points, ours included
    await machine.start_task("t", framework="adk")
    await machine.request_approval("t", "pay?", action="transfer", args={"to": "bob"})  # allows all four
    with pytest.raises(NotAuthorizedError, match="adk adapter cannot carry 'respond' back"):
        await machine.respond("t", "whatever", "mallory")
    assert (await machine.get_task("t")).state is TaskState.AWAITING_APPROVAL
    await machine.close()


async def _forge_duplicate_confirmation(adk: Any, session_id: str) -> None:
    """Append, as ADK would, a second confirmation request for a call that already has one."""
    service = adk.session_service
    session = await service.get_session(app_name=adk.app_name, user_id="u1", session_id=session_id)
    [original] = [c for e in session.events for c in e.get_function_calls() if c.name == REQUEST_CONFIRMATION]
    forged = types.FunctionCall(name=REQUEST_CONFIRMATION, id="adk-forged", args=dict(original.args or {}))
    event = Event(
        invocation_id=session.events[-1].invocation_id,
        author="payer",
        content=types.Content(role="model", parts=[types.Part(function_call=forged)]),
        long_running_tool_ids={"adk-forged"},
    )
    await service.append_event(session, event)


async def test_two_confirmations_of_one_call_are_refused_and_nothing_is_asked(
    machine: HITLStateMachine, done: Done
) -> None:
    adk, _ = runner([PAY_BOB])
    # Paused with a machine of its own, then the session is forged before anyone asks here.
    other = HITLStateMachine("memory://", load_entrypoints=False)
    await AdkApprovals(other, adk).start("u1", "pay bob", session_id="s-dup")
    await other.close()
    await _forge_duplicate_confirmation(adk, "s-dup")
    with pytest.raises(HITLError, match="both wait on tool call 'call-bob'; answering both would run it twice"):
        await AdkApprovals(machine, adk).resume("u1", "s-dup")
    assert await machine.get_all_tasks() == []
    assert done == []


async def test_args_over_the_payload_limit_are_refused_and_nothing_is_asked(done: Done) -> None:
    tiny = HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=256)
    big = {"name": "transfer", "args": {"to": "x" * 400, "amount": 500}, "id": "call-big"}
    adk, _ = runner([big, PAY_BOB])
    with pytest.raises(PayloadError, match=r"args of ADK tool call transfer \(call-big\) is .* over the limit of 256"):
        await AdkApprovals(tiny, adk).run("u1", "pay", session_id="s-big")
    assert await tiny.get_all_tasks() == []  # the other call of the pause was not asked either
    assert done == []
    await tiny.close()


async def test_unserialisable_args_are_refused_and_nothing_is_asked(machine: HITLStateMachine, done: Done) -> None:
    nan = {"name": "transfer", "args": {"to": "bob", "amount": math.inf}, "id": "call-inf"}
    adk, _ = runner([nan])
    with pytest.raises(PayloadError, match=r"args of ADK tool call transfer \(call-inf\) is not JSON-serialisable"):
        await AdkApprovals(machine, adk).run("u1", "pay", session_id="s-inf")
    assert await machine.get_all_tasks() == []
    assert done == []


async def test_a_call_changed_in_the_session_file_after_the_decision_is_not_answered(
    machine: HITLStateMachine, tmp_path: Path, done: Done
) -> None:
    db = tmp_path / "sessions.db"
    adk, _ = runner([PAY_BOB], sessions=DatabaseSessionService(f"sqlite+aiosqlite:///{db}"))
    paused = await AdkApprovals(machine, adk).start("u1", "pay bob", session_id="s-forged")
    await machine.approve(paused.task_ids[0], "alice")  # alice approved 500 EUR to bob
    # Mallory edits ADK's session file by hand: the call and its confirmation request now say 50000.
    with sqlite3.connect(db) as conn:
        changed = conn.execute(
            "UPDATE events SET event_data = replace(event_data, '\"amount\": 500', '\"amount\": 50000') "
            "WHERE event_data LIKE '%\"amount\": 500%'"
        ).rowcount
    assert changed >= 2
    fresh, _ = runner([PAY_BOB], sessions=DatabaseSessionService(f"sqlite+aiosqlite:///{db}"))
    with pytest.raises(HITLError, match=r"'call-bob' is now transfer .*50000.*, not what task .* was decided on"):
        await AdkApprovals(machine, fresh).resume("u1", "s-forged")
    assert done == []
    assert (await machine.get_task(paused.task_ids[0])).state is TaskState.APPROVED  # not claimed, not sent


async def test_an_edit_whose_args_did_not_arrive_never_runs_the_models_args(done: Done) -> None:
    adk, model = runner([PAY_BOB])
    other = HITLStateMachine("memory://", load_entrypoints=False)
    paused = await AdkApprovals(other, adk).start("u1", "pay bob", session_id="s-noargs")
    await other.close()
    session = await adk.session_service.get_session(app_name=adk.app_name, user_id="u1", session_id="s-noargs")
    [pending] = pending_confirmations(session)
    assert paused.task_ids == [f"adk:s-noargs:{pending.confirmation_id}"]
    # A hand-written answer, straight to ADK: "edit", confirmed, but without the edited args.
    forged = ToolConfirmation(confirmed=True, payload={"hitl": {"decision": "edit", "actor": "mallory"}})
    message = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=pending.confirmation_id, name=REQUEST_CONFIRMATION, response=forged.model_dump(by_alias=True)
                )
            )
        ],
    )
    async for _ in adk.run_async(user_id="u1", session_id="s-noargs", new_message=message):
        pass
    assert done == []
    assert seen(model)["call-bob"] == {"error": "The transfer call was not run: its edited arguments are missing."}


async def test_resuming_a_session_that_does_not_exist_is_refused(machine: HITLStateMachine) -> None:
    adk, _ = runner([PAY_BOB])
    with pytest.raises(TaskNotFoundError, match="no ADK session 'nope' of user 'u1'"):
        await AdkApprovals(machine, adk).resume("u1", "nope")
