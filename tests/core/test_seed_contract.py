"""The seed's public contract, exactly as issue 2 states it."""

from __future__ import annotations

import asyncio
from datetime import datetime

from hitl_core import (
    Decision,
    HITLStateMachine,
    InterruptPoint,
    Severity,
    TaskContext,
    TaskState,
)


async def test_basic_approval_flow_matches_the_seed(machine: HITLStateMachine) -> None:
    t = await machine.start_task("deploy_prod", metadata={"env": "prod"})
    assert isinstance(t, TaskContext)
    assert t.state == TaskState.RUNNING
    assert t.metadata == {"env": "prod"}

    t = await machine.request_approval(
        "deploy_prod",
        reason="Deploy v1.2.3",
        context={"version": "1.2.3"},
        options=["proceed", "cancel"],
        severity="critical",
    )
    assert t.state == TaskState.AWAITING_APPROVAL
    ip = t.interrupt_point
    assert isinstance(ip, InterruptPoint)
    assert (ip.reason, ip.context, ip.options, ip.severity) == (
        "Deploy v1.2.3",
        {"version": "1.2.3"},
        ["proceed", "cancel"],
        Severity.CRITICAL,
    )
    assert isinstance(ip.created_at, datetime) and ip.created_at.tzinfo is not None

    t = await machine.approve("deploy_prod", actor="alice")
    assert t.state == TaskState.APPROVED
    assert t.approval_data is not None
    assert t.approval_data["approver"] == "alice"
    assert t.approval_data["approved"] is True
    assert datetime.fromisoformat(t.approval_data["at"])

    t = await machine.resume("deploy_prod")
    assert t.state == TaskState.RUNNING
    assert t.interrupt_point is None
    kept = [h for h in t.history if h.get("interrupt_id") == ip.interrupt_id and h["action"] == "resume"]
    assert kept and kept[0]["reason"] == "Deploy v1.2.3" and kept[0]["decided_by"] == "alice"

    t = await machine.complete("deploy_prod", result={"ok": True})
    assert t.state == TaskState.COMPLETED
    assert t.result == {"ok": True}
    assert [h["action"] for h in t.history] == ["start", "request_approval", "approve", "resume", "complete"]


async def test_complete_result_is_optional(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    t = await machine.complete("t")
    assert t.state == TaskState.COMPLETED and t.result is None


async def test_reject_records_rejector_and_reason(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", reason="Drop table users")
    t = await machine.reject("t", actor="bob", message="too risky")
    assert t.state == TaskState.REJECTED
    assert t.approval_data is not None
    assert t.approval_data["rejector"] == "bob"
    assert t.approval_data["reason"] == "too risky"
    assert t.approval_data["approved"] is False
    assert t.decision is not None and t.decision.message == "too risky"


async def test_resume_after_reject_lets_the_agent_go_on_with_the_feedback(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", reason="Send email")
    await machine.reject("t", actor="bob", message="wrong recipient")
    t = await machine.resume("t")
    assert t.state == TaskState.RUNNING
    assert t.decision is not None and t.decision.message == "wrong recipient"


async def test_fail_keeps_the_error(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    t = await machine.fail("t", error="boom")
    assert t.state == TaskState.FAILED and t.error == "boom"


async def test_queries_are_coroutines_returning_lists(machine: HITLStateMachine) -> None:
    for i in range(5):
        await machine.start_task(f"t{i}")
    await machine.request_approval("t1", "why")
    await machine.request_approval("t3", "why")
    assert (await machine.get_task("t1")).state == TaskState.AWAITING_APPROVAL  # type: ignore[union-attr]
    assert await machine.get_task("missing") is None
    pending = await machine.get_pending_approvals()
    assert isinstance(pending, list) and [t.task_id for t in pending] == ["t1", "t3"]
    running = await machine.get_tasks_by_state(TaskState.RUNNING)
    assert sorted(t.task_id for t in running) == ["t0", "t2", "t4"]
    assert len(await machine.get_tasks_by_state("running")) == 3
    assert len(await machine.get_all_tasks()) == 5


def test_task_state_members_equal_their_lowercase_values() -> None:
    for state in TaskState:
        assert state == state.name.lower()
    assert [s.value for s in TaskState] == [
        "pending",
        "running",
        "awaiting_approval",
        "approved",
        "rejected",
        "completed",
        "failed",
    ]


async def test_severity_accepts_strings_and_enum(machine: HITLStateMachine) -> None:
    for i, sev in enumerate(["low", "MEDIUM", Severity.HIGH, "critical"]):
        await machine.start_task(f"t{i}")
        t = await machine.request_approval(f"t{i}", "why", severity=sev)
        assert t.interrupt_point is not None
        assert t.interrupt_point.severity == str(sev).lower().replace("severity.", "")


async def test_add_callback_runs_after_commit_before_return(machine: HITLStateMachine) -> None:
    seen: list[tuple[str, TaskState | None, TaskState, TaskState]] = []

    def sync_cb(task: TaskContext, old: TaskState | None, new: TaskState) -> None:
        seen.append(("sync", old, new, task.state))

    async def async_cb(task: TaskContext, old: TaskState | None, new: TaskState) -> None:
        await asyncio.sleep(0)
        seen.append(("async", old, new, task.state))

    machine.add_callback(sync_cb)
    machine.add_callback(async_cb, task_id="b")
    await machine.start_task("a")
    await machine.start_task("b")
    assert seen == [
        ("sync", None, TaskState.RUNNING, TaskState.RUNNING),
        ("sync", None, TaskState.RUNNING, TaskState.RUNNING),
        ("async", None, TaskState.RUNNING, TaskState.RUNNING),
    ]
    machine.remove_callback(sync_cb)
    await machine.request_approval("a", "why")
    assert len(seen) == 3


async def test_wait_for_decision_returns_the_decision(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "why")

    async def operator() -> None:
        await asyncio.sleep(0.01)
        await machine.approve("t", actor="alice")

    op = asyncio.create_task(operator())
    decision = await machine.wait_for_decision("t", timeout=5.0)
    await op
    assert isinstance(decision, Decision)
    assert decision.type == "approve" and decision.actor.id == "alice" and decision.approved


async def test_wait_for_decision_returns_at_once_when_already_decided(machine: HITLStateMachine) -> None:
    await machine.start_task("t")
    await machine.request_approval("t", "why")
    await machine.reject("t", actor="bob", message="no")
    decision = await machine.wait_for_decision("t", timeout=0.01)
    assert decision.type == "reject" and decision.actor.id == "bob"


async def test_task_context_round_trips_through_json(machine: HITLStateMachine) -> None:
    await machine.start_task("t", metadata={"k": [1, 2]}, agent="deployer", framework="plain")
    await machine.request_approval(
        "t", "why", context={"nested": {"a": [1, None, True]}}, action="deploy", args={"env": "prod"}, timeout=60
    )
    await machine.edit("t", {"env": "staging"}, actor="alice")
    t = await machine.resume("t")
    assert TaskContext.model_validate_json(t.model_dump_json()) == t
    assert TaskContext.from_dict(t.to_dict()) == t
