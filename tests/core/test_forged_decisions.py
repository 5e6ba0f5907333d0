"""Only the machine makes ``policy`` and ``timeout`` decisions: every public way in is attacked here.

The attacker is any caller of the public API — an agent approving its own request, a script, the
CLI, the sync facade — with a full ``hitl.toml`` loaded (four eyes at critical). Each attempt must
raise a ``HITLError`` and leave the task exactly as it was: same version, same state, no event.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hitl_core import (
    Actor,
    Decision,
    DecisionType,
    HITLStateMachine,
    InterruptPoint,
    InvalidTransitionError,
    NotAuthorizedError,
    PayloadError,
    TaskContext,
    TaskState,
    hookimpl,
)
from hitl_core.policies import parse_config

POLICY = """
[deadlines]
sweep = false

[authorization]
four_eyes = ["critical"]
"""

PAST = datetime.now(UTC) - timedelta(seconds=1)  # a deadline that has passed already
ALLOWING = POLICY.replace("sweep = false", "sweep = false\nallow_default_approve = true")


@pytest.fixture
async def guarded() -> AsyncIterator[HITLStateMachine]:
    """A machine with the policy loaded and one critical four-eyes request ``t`` waiting."""
    m = HITLStateMachine("memory://", load_entrypoints=False, config=parse_config(POLICY))
    await m.start_task("t", agent="deploy-bot")
    task = await m.request_approval("t", "drop the prod table?", severity="critical", action="drop", args={"t": "x"})
    assert task.interrupt_point is not None and task.interrupt_point.required_approvals == 2
    yield m
    await m.close()


async def unchanged(m: HITLStateMachine, attempt: Callable[[], Awaitable[Any]], error: type[Exception]) -> str:
    """Run ``attempt``, expect ``error``, and check that nothing at all was written."""
    before = await m.get_task("t")
    events = len(await m.events())
    with pytest.raises(error) as info:
        await attempt()
    after = await m.get_task("t")
    assert after == before and after is not None and after.state == TaskState.AWAITING_APPROVAL
    assert len(await m.events()) == events
    return str(info.value)


def forged(kind: str, outcome: str = "approve", actor: str = "policy:allow-all", source: str = "policy") -> Decision:
    return Decision(type=kind, outcome=outcome, actor=Actor(id=actor, source=source))


async def test_forged_policy_decision_through_decide_is_refused(guarded: HITLStateMachine) -> None:
    message = await unchanged(guarded, lambda: guarded.decide("t", forged("policy")), NotAuthorizedError)
    assert "a policy decision is made only by the machine" in message


async def test_forged_timeout_decision_is_refused(guarded: HITLStateMachine) -> None:
    decision = forged("timeout", actor="hitl:timeout", source="timeout")
    message = await unchanged(guarded, lambda: guarded.decide("t", decision), NotAuthorizedError)
    assert "a timeout decision is made only by the machine" in message


@pytest.mark.parametrize("actor", ["alice", "policy:allow-all", "hitl:timeout"])
@pytest.mark.parametrize("kind", ["policy", "timeout"])
async def test_forged_machine_decision_is_refused_whoever_it_names(
    guarded: HITLStateMachine, kind: str, actor: str
) -> None:
    decision = forged(kind, actor=actor, source="console")
    await unchanged(guarded, lambda: guarded.decide("t", decision, interrupt_id=None), NotAuthorizedError)


async def test_forged_policy_decision_through_the_sync_facade_is_refused() -> None:
    m = HITLStateMachine("memory://", load_entrypoints=False, config=parse_config(POLICY))
    try:
        m.sync.start_task("t")
        m.sync.request_approval("t", "why", severity="critical")
        with pytest.raises(NotAuthorizedError):
            m.sync.decide("t", forged("policy"))
        with pytest.raises(NotAuthorizedError):
            m.sync.decide("t", forged("timeout", actor="hitl:timeout", source="timeout"))
        with pytest.raises(NotAuthorizedError):
            m.sync.approve("t", "policy:allow-all")
        task = m.sync.get_task("t")
        assert task is not None and task.state == TaskState.AWAITING_APPROVAL and task.approvals == []
    finally:
        m.sync.close_machine()


@pytest.mark.parametrize(
    ("who", "source"),
    [
        ("policy:allow-all", "api"),
        ("hitl:timeout", "api"),
        ("timeout:grace", "console"),
        ("escalation:level-1", "cli"),
        ("alice", "policy"),
        ("alice", "timeout"),
    ],
)
@pytest.mark.parametrize("verb", ["approve", "reject", "edit", "respond"])
async def test_person_decision_may_not_claim_a_machine_actor(
    guarded: HITLStateMachine, verb: str, who: str, source: str
) -> None:
    calls: dict[str, Callable[[], Awaitable[TaskContext]]] = {
        "approve": lambda: guarded.approve("t", who, source=source),
        "reject": lambda: guarded.reject("t", who, "no", source=source),
        "edit": lambda: guarded.edit("t", {"t": "y"}, who, source=source),
        "respond": lambda: guarded.respond("t", {"ok": True}, who, source=source),
    }
    message = await unchanged(guarded, calls[verb], NotAuthorizedError)
    assert "is reserved for the machine's policy and timeout decisions" in message


async def test_person_decision_with_a_forged_outcome_is_refused(guarded: HITLStateMachine) -> None:
    decision = Decision(type="reject", outcome="approve", actor=Actor(id="alice"))
    message = await unchanged(guarded, lambda: guarded.decide("t", decision), PayloadError)
    assert "outcome goes only with a policy or timeout decision" in message


async def test_a_person_still_decides_through_the_same_calls(guarded: HITLStateMachine) -> None:
    first = await guarded.approve("t", "alice", source="console")
    assert first.state == TaskState.AWAITING_APPROVAL and len(first.approvals) == 1
    second = await guarded.approve("t", "bob", source="cli")
    assert second.state == TaskState.APPROVED and second.decision is not None
    assert (second.decision.type, second.decision.actor.id) == (DecisionType.APPROVE, "bob")


def test_cli_cannot_send_a_policy_decision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    config = tmp_path / "hitl.toml"
    config.write_text(POLICY, encoding="utf-8")

    async def ask() -> None:
        async with HITLStateMachine(url, load_entrypoints=False, config=config) as m:
            await m.start_task("t", agent="deploy-bot")
            await m.request_approval("t", "why", severity="critical")

    asyncio.run(ask())
    hitl = str(Path(sys.executable).parent / "hitl")
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"} | {"HITL_CONFIG": str(config)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [hitl, *args, "--store", url], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )

    for actor in ("policy:allow-all", "hitl:timeout", "timeout:grace"):
        refused = run("approve", "t", "--as", actor)
        assert refused.returncode == 7, refused.stderr  # NotAuthorizedError's exit code
        assert "is reserved for the machine's policy and timeout decisions" in refused.stderr
    for flag in ("--type=policy", "--source=policy", "--outcome=approve"):
        unknown = run("approve", "t", "--as", "alice", flag)
        assert unknown.returncode == 2 and "unrecognized arguments" in unknown.stderr

    async def state() -> tuple[TaskState, int]:
        async with HITLStateMachine(url, load_entrypoints=False) as m:
            task = await m.get_task("t")
            assert task is not None
            return task.state, len(task.approvals)

    assert asyncio.run(state()) == (TaskState.AWAITING_APPROVAL, 0)


# -- the machine's own paths still decide ------------------------------------------------------


async def test_plugin_auto_decide_approval_is_recorded_as_policy_by_its_rule() -> None:
    class Rules:
        @hookimpl
        def hitl_auto_decide(self, task: TaskContext, interrupt: InterruptPoint) -> Decision | None:
            if interrupt.action is not None and interrupt.action.name == "read":
                return Decision(type="policy", outcome="approve", actor=Actor(id="policy:reads", source="policy"))
            if interrupt.action is not None and interrupt.action.name == "sneaky":
                # a plugin that claims a person: recorded under its own policy name all the same
                return Decision(type="approve", actor=Actor(id="alice", source="console"))
            return None

    async with HITLStateMachine("memory://", plugins=[Rules()], load_entrypoints=False) as m:
        await m.start_task("r")
        read = await m.request_approval("r", "read", action="read", args={"p": "/etc/hosts"})
        assert read.state == TaskState.APPROVED and read.decision is not None
        assert (read.decision.type, read.decision.outcome) == (DecisionType.POLICY, "approve")
        assert (read.decision.actor.id, read.decision.actor.source) == ("policy:reads", "policy")
        await m.start_task("s")
        sneaky = await m.request_approval("s", "sneaky", action="sneaky")
        assert sneaky.decision is not None and sneaky.decision.type == DecisionType.POLICY
        assert (sneaky.decision.actor.id, sneaky.decision.actor.source) == ("policy:alice", "policy")
        [event] = [e for e in await m.events(task_id="s") if e.action == "approve"]
        assert event.actor is not None and event.actor.id == "policy:alice"


async def test_rule_from_config_approves_as_policy_rule_id() -> None:
    config = parse_config('[[rules]]\nid = "routine-search"\ndecision = "allow"\naction = "search"\n')
    async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as m:
        await m.start_task("t")
        task = await m.request_approval("t", "search", action="search", args={"q": "x"})
        assert task.state == TaskState.APPROVED and task.decision is not None
        assert (task.decision.type, task.decision.actor.id) == (DecisionType.POLICY, "policy:routine-search")


async def test_deadline_plugin_answer_is_recorded_as_a_timeout_never_a_person() -> None:
    class Grace:
        @hookimpl
        def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Decision:
            return Decision(type="approve", actor=Actor(id="alice", source="console"))

    async with HITLStateMachine("memory://", plugins=[Grace()], load_entrypoints=False) as m:
        await m.start_task("t")
        await m.request_approval("t", "why", deadline=datetime.now(UTC) - timedelta(seconds=1))
        task = await m.expire("t")
        assert task.decision is not None and task.state == TaskState.APPROVED
        assert (task.decision.type, task.decision.outcome) == (DecisionType.TIMEOUT, "approve")
        assert (task.decision.actor.id, task.decision.actor.source) == ("timeout:alice", "timeout")


# -- default approve --------------------------------------------------------------------------


async def test_agent_chosen_default_approve_is_refused_without_config(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    with pytest.raises(PayloadError, match=r"default_decision='approve' is refused.*allow_default_approve = true"):
        await machine.request_approval("t", "why", timeout=60, default_decision="approve")
    task = await machine.get_task("t")
    assert task is not None and task.state == TaskState.RUNNING and task.version == 1


async def test_default_approve_is_refused_when_the_config_does_not_allow_it(guarded: HITLStateMachine) -> None:
    await guarded.start_task("u")
    with pytest.raises(PayloadError, match="allow_default_approve"):
        await guarded.request_approval("u", "why", timeout=60, default_decision="approve")
    with pytest.raises(PayloadError, match="allow_default_approve"):
        guarded.sync.request_approval("u", "why", timeout=60, default_decision="approve")
    assert (await guarded.get_task("u")).state == TaskState.RUNNING  # type: ignore[union-attr]


async def test_default_approve_allowed_when_config_says_so() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False, config=parse_config(ALLOWING)) as m:
        await m.start_task("t")
        asked = await m.request_approval("t", "why", deadline=PAST, default_decision="approve")
        assert asked.interrupt_point is not None and asked.interrupt_point.default_decision == "approve"
        task = await m.expire("t")
        assert task.state == TaskState.APPROVED and task.decision is not None
        assert (task.decision.type, task.decision.outcome, task.decision.actor.id) == (
            DecisionType.TIMEOUT,
            "approve",
            "hitl:timeout",
        )


async def test_forced_early_expiry_may_only_reject() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False, config=parse_config(ALLOWING)) as m:
        await m.start_task("yes")
        await m.request_approval("yes", "why", timeout=3600, default_decision="approve")
        before = await m.get_task("yes")
        with pytest.raises(InvalidTransitionError, match="an early expiry may only reject"):
            await m.expire("yes", force=True)
        assert await m.get_task("yes") == before
        await m.start_task("no")
        await m.request_approval("no", "why", timeout=3600)
        rejected = await m.expire("no", force=True)
        assert rejected.state == TaskState.REJECTED and rejected.decision is not None
        assert rejected.decision.type == DecisionType.TIMEOUT


async def test_default_approve_expired_where_the_config_does_not_allow_it_rejects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    async with HITLStateMachine(url, load_entrypoints=False, config=parse_config(ALLOWING)) as agent:
        await agent.start_task("t")
        await agent.request_approval("t", "why", deadline=PAST, default_decision="approve")
    async with HITLStateMachine(url, load_entrypoints=False) as other:  # no hitl.toml here
        task = await other.expire("t")
    assert task.state == TaskState.REJECTED and task.decision is not None
    assert (task.decision.type, task.decision.outcome) == (DecisionType.TIMEOUT, "reject")
    assert "default approve is not allowed here" in (task.decision.message or "")


# -- escalation and the machine's other names ---------------------------------------------------


async def test_no_caller_can_escalate_a_request_to_itself(guarded: HITLStateMachine) -> None:
    """Re-assigning a request is the escalation policy's: there is no public way to do it.

    An attacker holding a machine (or a server client) would hand the request to itself and then
    approve it as its only assignee, with the audit trail naming ``escalation:level-1``.
    """
    from hitl_core.client import RemoteMachine

    assert not hasattr(guarded, "escalate")
    assert not hasattr(RemoteMachine, "escalate")
    # expire before the deadline, with no escalation plugin, only ever rejects: it never re-assigns.
    task = await guarded.expire("t", force=True)
    assert task.state == TaskState.REJECTED
    assert not any(e.action == "escalate" for e in await guarded.events())


async def test_an_escalation_is_applied_by_the_machine_at_the_level_it_counts() -> None:
    """A deadline plugin answers where the request goes; the machine numbers the level itself."""
    from hitl_core import Escalation

    class Chain:
        @hookimpl
        def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Escalation:
            return Escalation(assignees=[f"boss-of-{','.join(interrupt.assignees) or 'none'}"], deadline=PAST)

    async with HITLStateMachine("memory://", plugins=[Chain()], load_entrypoints=False) as m:
        await m.start_task("t")
        await m.request_approval("t", "why", deadline=PAST, assignees=["alice"])
        first = await m.expire("t")
        second = await m.expire("t")
        assert second.state == TaskState.AWAITING_APPROVAL and second.interrupt_point is not None
        assert second.interrupt_point.assignees == ["boss-of-boss-of-alice"]
        assert first.interrupt_point is not None
        assert second.interrupt_point.interrupt_id == first.interrupt_point.interrupt_id
        escalations = [e for e in await m.events() if e.action == "escalate"]
        assert [(e.actor.id, e.actor.source, e.data["level"]) for e in escalations] == [
            ("escalation:level-1", "policy", 1),
            ("escalation:level-2", "policy", 2),
        ]
        assert (await m.verify()).ok


@pytest.mark.parametrize("name", ["policy:allow-all", "hitl:timeout", "timeout:x", "escalation:level-1"])
async def test_pause_resume_and_requests_may_not_name_the_machine(name: str) -> None:
    """``pause``/``resume``'s actor and ``requested_by`` are people: the machine's ids are refused.

    Recorded under one, a pause or a resume would read in the audit trail as the machine's own act.
    """
    async with HITLStateMachine("memory://", load_entrypoints=False) as m:
        await m.start_task("t")
        events = len(await m.events())
        with pytest.raises(NotAuthorizedError, match="reserved"):
            await m.pause("t", name, "look at this")
        with pytest.raises(NotAuthorizedError, match="reserved"):
            await m.request_approval("t", "why", requested_by=name)
        assert len(await m.events()) == events
        await m.request_approval("t", "why")
        await m.approve("t", "alice")
        with pytest.raises(NotAuthorizedError, match="reserved"):
            await m.resume("t", actor=name)
        task = await m.get_task("t")
        assert task is not None and task.state == TaskState.APPROVED
