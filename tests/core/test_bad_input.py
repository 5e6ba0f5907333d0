"""Every bad input issue 2 names gets a clear error, and nothing changes when it is refused."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from hitl_core import (
    AlreadyDecidedError,
    ConflictError,
    DuplicateTaskError,
    HITLStateMachine,
    InvalidTransitionError,
    NotAuthorizedError,
    PayloadError,
    TaskNotFoundError,
    TaskState,
)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.request_approval("nope", "why"),
        lambda m: m.approve("nope", actor="a"),
        lambda m: m.reject("nope", actor="a", message="r"),
        lambda m: m.resume("nope"),
        lambda m: m.complete("nope"),
        lambda m: m.fail("nope", error="e"),
        lambda m: m.pause("nope", "alice", "look"),
        lambda m: m.edit("nope", {"a": 1}),
        lambda m: m.respond("nope", "yes"),
    ],
)
async def test_unknown_task_id_raises_task_not_found(machine: HITLStateMachine, call: Any) -> None:
    with pytest.raises(TaskNotFoundError, match="'nope' not found"):
        await call(machine)
    assert await machine.get_all_tasks() == []


@pytest.mark.parametrize("state_setup", ["running", "awaiting", "completed"])
async def test_starting_an_existing_non_pending_id_is_a_duplicate(machine: HITLStateMachine, state_setup: str) -> None:
    await machine.start_task("t")
    if state_setup == "awaiting":
        await machine.request_approval("t", "why")
    if state_setup == "completed":
        await machine.complete("t")
    before = await machine.get_task("t")
    with pytest.raises(DuplicateTaskError, match="'t' already exists"):
        await machine.start_task("t")
    assert await machine.get_task("t") == before


async def test_create_task_twice_is_a_duplicate(machine: HITLStateMachine) -> None:
    await machine.create_task("t")
    with pytest.raises(DuplicateTaskError):
        await machine.create_task("t")
    t = await machine.start_task("t")  # a PENDING task may be started
    assert t.state == TaskState.RUNNING


@pytest.mark.parametrize(
    "name, call",
    [
        ("approve twice", lambda m: m.approve("t", actor="b")),
        ("reject approved", lambda m: m.reject("t", actor="b", message="r")),
    ],
)
async def test_second_decision_is_already_decided_naming_who(machine: HITLStateMachine, name: str, call: Any) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "why")
    await machine.approve("t", actor="alice")
    before = await machine.get_task("t")
    with pytest.raises(AlreadyDecidedError, match="already decided by alice") as info:
        await call(machine)
    assert info.value.decided_by == "alice"
    # It is both a conflict and an illegal transition, so either handler catches it.
    assert isinstance(info.value, ConflictError) and isinstance(info.value, InvalidTransitionError)
    assert await machine.get_task("t") == before


@pytest.mark.parametrize(
    "name, setup, call, action",
    [
        ("resume a running task", [], lambda m: m.resume("t"), "resume"),
        ("complete a completed task", ["complete"], lambda m: m.complete("t"), "complete"),
        ("approve a running task", [], lambda m: m.approve("t", actor="a"), "approve"),
        ("request approval twice", ["request"], lambda m: m.request_approval("t", "again"), "request_approval"),
        ("fail a failed task", ["fail"], lambda m: m.fail("t", "again"), "fail"),
        ("pause a waiting task", ["request"], lambda m: m.pause("t", "alice", "look"), "pause"),
        ("complete a waiting task", ["request"], lambda m: m.complete("t"), "complete"),
    ],
)
async def test_illegal_transition_names_task_state_and_action(
    machine: HITLStateMachine, name: str, setup: list[str], call: Any, action: str
) -> None:
    await machine.start_task("t")
    for step in setup:
        if step == "complete":
            await machine.complete("t")
        elif step == "request":
            await machine.request_approval("t", "why")
        elif step == "fail":
            await machine.fail("t", "x")
    before = await machine.get_task("t")
    with pytest.raises(InvalidTransitionError) as info:
        await call(machine)
    err = info.value
    assert err.task_id == "t" and err.state == before.state.value and err.action == action  # type: ignore[union-attr]
    assert "'t'" in str(err) and before.state.value in str(err) and action in str(err)  # type: ignore[union-attr]
    assert await machine.get_task("t") == before


class Unserialisable:
    pass


@pytest.mark.parametrize(
    "context",
    [
        {"obj": Unserialisable()},
        {"fn": print},
        {"nan": float("nan")},
        {"set": {1, 2}.__iter__()},
    ],
)
async def test_unserialisable_context_is_a_payload_error(machine: HITLStateMachine, context: dict[str, Any]) -> None:
    await machine.start_task("t")
    with pytest.raises(PayloadError, match="context is not JSON-serialisable"):
        await machine.request_approval("t", "why", context=context)
    assert (await machine.get_task("t")).state == TaskState.RUNNING  # type: ignore[union-attr]


async def test_self_referencing_context_is_a_payload_error(machine: HITLStateMachine) -> None:
    loop: dict[str, Any] = {}
    loop["me"] = loop
    await machine.start_task("t")
    with pytest.raises(PayloadError):
        await machine.request_approval("t", "why", context=loop)


async def test_oversized_context_is_a_payload_error_with_the_limit() -> None:
    machine = HITLStateMachine("memory://", load_entrypoints=False, max_payload_bytes=1000)
    await machine.start_task("t")
    with pytest.raises(PayloadError, match=r"over the limit of 1,000 bytes"):
        await machine.request_approval("t", "why", context={"blob": "x" * 2000})
    with pytest.raises(PayloadError, match="action args"):
        await machine.request_approval("t", "why", action="upload", args={"blob": "x" * 2000})
    t = await machine.request_approval("t", "why", context={"blob": "x" * 100})
    assert t.state == TaskState.AWAITING_APPROVAL


async def test_default_payload_limit_is_one_mebibyte(machine: HITLStateMachine) -> None:
    assert machine.max_payload_bytes == 1024 * 1024
    await machine.start_task("t")
    with pytest.raises(PayloadError, match="1,048,576"):
        await machine.request_approval("t", "why", context={"blob": "x" * (1024 * 1024)})


@pytest.mark.parametrize("task_id", ["", "   ", None, 42, "x" * 300])
async def test_bad_task_id_is_a_payload_error(machine: HITLStateMachine, task_id: Any) -> None:
    with pytest.raises(PayloadError, match="task id"):
        await machine.start_task(task_id)


@pytest.mark.parametrize("reason", ["", "  ", None])
async def test_empty_reason_is_a_payload_error(machine: HITLStateMachine, reason: Any) -> None:
    await machine.start_task("t")
    with pytest.raises(PayloadError, match="reason"):
        await machine.request_approval("t", reason)


async def test_observer_callback_that_raises_is_logged_counted_and_transition_stands(
    machine: HITLStateMachine, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("observer bug")

    def healthy(task: Any, *_: Any) -> None:
        calls.append(task.task_id)

    machine.add_callback(broken)
    machine.add_callback(healthy)
    with caplog.at_level(logging.ERROR, logger="hitl.plugins"):
        t = await machine.start_task("t")
    assert t.state == TaskState.RUNNING
    assert (await machine.get_task("t")).state == TaskState.RUNNING  # type: ignore[union-attr]
    assert calls == ["t"]  # the other callback still ran
    assert machine.observer_errors == 1
    assert "observer bug" in caplog.text and "the transition stands" in caplog.text


async def test_option_must_be_one_of_the_interrupt_options(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "why", options=["proceed", "cancel"])
    with pytest.raises(PayloadError, match="'launch' is not one of"):
        await machine.approve("t", actor="a", option="launch")
    t = await machine.approve("t", actor="a", option="proceed")
    assert t.decision is not None and t.decision.option == "proceed"


async def test_decision_outside_allowed_decisions_is_refused(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval(
        "t", "why", action="transfer", args={"amount": 5}, allowed_decisions=["approve", "reject"]
    )
    with pytest.raises(InvalidTransitionError, match="allows only approve, reject"):
        await machine.edit("t", {"amount": 500}, actor="a")
    assert (await machine.get_task("t")).state == TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]


async def test_response_must_fit_the_response_schema(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer", "maximum": 100}}}
    await machine.request_approval("t", "How much?", kind="question", response_schema=schema)
    with pytest.raises(PayloadError, match=r"missing required property 'amount'"):
        await machine.respond("t", {"amt": 5}, actor="a")
    with pytest.raises(PayloadError, match=r"above the maximum 100"):
        await machine.respond("t", {"amount": 500}, actor="a")
    t = await machine.respond("t", {"amount": 50}, actor="a")
    assert t.state == TaskState.APPROVED and t.decision is not None and t.decision.response == {"amount": 50}


async def test_decision_on_a_stale_interrupt_is_a_conflict(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    first = await machine.request_approval("t", "first")
    await machine.approve("t", actor="alice")
    await machine.resume("t")
    await machine.request_approval("t", "second")
    assert first.interrupt_point is not None
    with pytest.raises(ConflictError):
        await machine.approve("t", actor="bob", interrupt_id=first.interrupt_point.interrupt_id)


async def test_approving_args_that_changed_since_shown_is_a_conflict(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "pay", action="transfer", args={"amount": 5})
    with pytest.raises(ConflictError, match="args changed"):
        await machine.approve("t", actor="a", args_fingerprint="0" * 64)


async def test_four_eyes_needs_two_different_people(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "wire 1M", severity="critical", required_approvals=2)
    t = await machine.approve("t", actor="alice")
    assert t.state == TaskState.AWAITING_APPROVAL and len(t.approvals) == 1 and t.decision is None
    with pytest.raises(NotAuthorizedError, match="different person"):
        await machine.approve("t", actor="alice")
    t = await machine.approve("t", actor="bob")
    assert t.state == TaskState.APPROVED and [a.actor.id for a in t.approvals] == ["alice", "bob"]


async def test_edit_needs_a_json_object(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "pay", action="transfer", args={"amount": 5})
    with pytest.raises(PayloadError, match="edited args"):
        await machine.edit("t", {"amount": object()}, actor="a")
    t = await machine.edit("t", {"amount": 3}, actor="a")
    assert t.decision is not None and t.decision.edited_args == {"amount": 3}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"options": True}, "options must be a list of strings, got bool"),
        ({"options": {"a": 1}}, "options must be a list of strings, got dict"),
        ({"assignees": 5}, "assignees must be a list of strings, got int"),
        ({"timeout": 1e300}, "past any date"),
        ({"timeout": float("inf")}, "past any date"),
        ({"timeout": float("nan")}, "positive number of seconds"),
        ({"timeout": "5"}, "positive number of seconds"),
        ({"timeout": True}, "positive number of seconds"),
        ({"deadline": "tomorrow"}, "deadline must be a datetime"),
    ],
)
async def test_a_request_with_a_wrongly_typed_field_is_a_payload_error_and_asks_nothing(
    machine: HITLStateMachine, kwargs: dict, words: str
) -> None:
    """Found by the fuzzer: these raised a bare TypeError or OverflowError from deep inside."""
    await machine.start_task("t")
    with pytest.raises(PayloadError, match=re.escape(words)):
        await machine.request_approval("t", "why", **kwargs)
    task = await machine.get_task("t")
    assert task is not None and task.state is TaskState.RUNNING and task.version == 1
