"""The transition table, checked exhaustively and by a random walk against the machine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from escalating import escalate
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hitl_core import (
    TRANSITIONS,
    AlreadyDecidedError,
    DuplicateTaskError,
    HITLError,
    HITLStateMachine,
    InvalidTransitionError,
    TaskState,
)

S = TaskState

# The table as DESIGN.md §2 states it, written out independently of the code's.
EXPECTED = {
    "start": {None: S.RUNNING, S.PENDING: S.RUNNING},
    "request_approval": {S.RUNNING: S.AWAITING_APPROVAL},
    "pause": {S.RUNNING: S.AWAITING_APPROVAL},
    "approve": {S.AWAITING_APPROVAL: S.APPROVED},
    "reject": {S.AWAITING_APPROVAL: S.REJECTED},
    "escalate": {S.AWAITING_APPROVAL: S.AWAITING_APPROVAL},
    "resume": {S.APPROVED: S.RUNNING, S.REJECTED: S.RUNNING},
    "complete": {S.RUNNING: S.COMPLETED},
    "fail": {s: S.FAILED for s in (S.PENDING, S.RUNNING, S.AWAITING_APPROVAL, S.APPROVED, S.REJECTED)},
}


def test_table_matches_the_design() -> None:
    for action, moves in EXPECTED.items():
        assert dict(TRANSITIONS[action]) == moves, action
    assert not any(s in TRANSITIONS[a] for a in TRANSITIONS for s in (S.COMPLETED, S.FAILED)), "terminal states"


ACTIONS: dict[str, Callable[[HITLStateMachine], Awaitable[Any]]] = {
    "start": lambda m: m.start_task("t"),
    "request_approval": lambda m: m.request_approval("t", "why"),
    "pause": lambda m: m.pause("t", "alice", "look"),
    "approve": lambda m: m.approve("t", actor="alice"),
    "reject": lambda m: m.reject("t", actor="bob", message="no"),
    "escalate": lambda m: escalate(m, "t", ["carol"]),
    "resume": lambda m: m.resume("t"),
    "complete": lambda m: m.complete("t"),
    "fail": lambda m: m.fail("t", "boom"),
}

# How to bring a task into each state with legal steps.
REACH: dict[TaskState, list[str]] = {
    S.PENDING: [],
    S.RUNNING: ["start"],
    S.AWAITING_APPROVAL: ["start", "request_approval"],
    S.APPROVED: ["start", "request_approval", "approve"],
    S.REJECTED: ["start", "request_approval", "reject"],
    S.COMPLETED: ["start", "complete"],
    S.FAILED: ["start", "fail"],
}


@pytest.mark.parametrize("state", list(TaskState))
@pytest.mark.parametrize("action", list(ACTIONS))
async def test_every_state_action_pair_follows_the_table(state: TaskState, action: str) -> None:
    m = HITLStateMachine("memory://", load_entrypoints=False)
    await m.create_task("t")
    for step in REACH[state]:
        await ACTIONS[step](m)
    before = await m.get_task("t")
    assert before is not None and before.state == state
    expected = EXPECTED[action].get(state)
    if expected is None and action == "start":
        with pytest.raises(DuplicateTaskError):
            await ACTIONS[action](m)
        assert await m.get_task("t") == before
    elif expected is None and action == "escalate":
        # Escalation happens only inside expire: a task that is not waiting is refused
        # (InvalidTransitionError for expire) or, once decided, returned as it is.
        try:
            unchanged = await ACTIONS[action](m)
        except InvalidTransitionError as exc:
            assert exc.task_id == "t" and exc.action == "expire"
        else:
            assert unchanged == before
        assert await m.get_task("t") == before, "a refused transition changed the task"
    elif expected is None:
        with pytest.raises(InvalidTransitionError) as info:
            await ACTIONS[action](m)
        assert info.value.task_id == "t" and info.value.action == action
        assert await m.get_task("t") == before, "a refused transition changed the task"
    else:
        after = await ACTIONS[action](m)
        assert after.state == expected
        assert after.version == before.version + 1
        assert after.history[-1]["action"] == action


class MachineAgainstTable(RuleBasedStateMachine):
    """Random operations on a few tasks; the machine must agree with a model built from the table."""

    ids = st.sampled_from(["a", "b", "c"])

    @initialize()
    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.m = HITLStateMachine("memory://", load_entrypoints=False)
        self.model: dict[str, TaskState] = {}
        self.decided_by: dict[str, str] = {}

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def apply(self, task_id: str, action: str, call: Callable[[], Awaitable[Any]], actor: str | None = None) -> None:
        state = self.model.get(task_id)
        expected = EXPECTED[action].get(state)
        if action == "start" and state is not None and state is not S.PENDING:
            expected = None
        try:
            result = self.run(call())
        except HITLError as exc:
            assert expected is None, f"{action} from {state} should work, got {exc!r}"
            if isinstance(exc, AlreadyDecidedError):
                assert exc.decided_by == self.decided_by.get(task_id)
            return
        if expected is None and action == "escalate":
            assert result.state == state, "an escalation outside a wait changed the task"
            return
        assert expected is not None, f"{action} from {state} should have been refused"
        assert result.state == expected
        self.model[task_id] = expected
        if action in ("approve", "reject") and actor:
            self.decided_by[task_id] = actor

    @rule(task_id=ids)
    def start(self, task_id: str) -> None:
        self.apply(task_id, "start", lambda: self.m.start_task(task_id))

    @rule(task_id=ids)
    def request(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "request_approval", lambda: self.m.request_approval(task_id, "why"))

    @rule(task_id=ids)
    def pause(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "pause", lambda: self.m.pause(task_id, "op", "look"))

    @rule(task_id=ids, who=st.sampled_from(["alice", "bob"]))
    def approve(self, task_id: str, who: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "approve", lambda: self.m.approve(task_id, actor=who), who)

    @rule(task_id=ids, who=st.sampled_from(["alice", "bob"]))
    def reject(self, task_id: str, who: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "reject", lambda: self.m.reject(task_id, actor=who, message="no"), who)

    @rule(task_id=ids)
    def escalate(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "escalate", lambda: escalate(self.m, task_id, ["carol"]))

    @rule(task_id=ids)
    def resume(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "resume", lambda: self.m.resume(task_id))

    @rule(task_id=ids)
    def complete(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "complete", lambda: self.m.complete(task_id))

    @rule(task_id=ids)
    def fail(self, task_id: str) -> None:
        if task_id in self.model:
            self.apply(task_id, "fail", lambda: self.m.fail(task_id, "boom"))

    @precondition(lambda self: bool(self.model))
    @invariant()
    def store_agrees(self) -> None:
        for task_id, state in self.model.items():
            task = self.run(self.m.get_task(task_id))
            assert task.state == state
            assert task.version == len(task.history)
        pending = {t.task_id for t in self.run(self.m.get_pending_approvals())}
        assert pending == {t for t, s in self.model.items() if s is S.AWAITING_APPROVAL}
        assert self.run(self.m.verify()).ok

    def teardown(self) -> None:
        self.loop.close()


TestMachineAgainstTable = MachineAgainstTable.TestCase
TestMachineAgainstTable.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_allowed_actions_are_exactly_the_tables_moves_from_a_state() -> None:
    from hitl_core.transitions import allowed_actions

    assert allowed_actions(None) == ["create", "start"]
    assert allowed_actions(TaskState.AWAITING_APPROVAL) == [
        "approve",
        "approve_partial",
        "reject",
        "escalate",
        "fail",
    ]
    assert allowed_actions(TaskState.APPROVED) == ["resume", "fail"]
    assert allowed_actions(TaskState.COMPLETED) == allowed_actions(TaskState.FAILED) == []
