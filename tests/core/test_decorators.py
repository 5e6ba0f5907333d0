"""``@requires_approval`` and ``@interruptible`` on sync and async functions, decided by a person."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from hitl_core import (
    ApprovalRejected,
    HITLStateMachine,
    PayloadError,
    TaskState,
    acheckpoint,
    checkpoint,
    interruptible,
    requires_approval,
)
from hitl_core.policies import parse_config


async def _decide_first_pending(m: HITLStateMachine, how: str, **kw: Any) -> str:
    for _ in range(500):
        pending = await m.get_pending_approvals()
        if pending:
            task = pending[0]
            if how == "approve":
                await m.approve(task.task_id, actor="alice")
            elif how == "reject":
                await m.reject(task.task_id, actor="bob", message=kw.get("reason", "no"))
            elif how == "edit":
                await m.edit(task.task_id, kw["args"], actor="alice")
            return task.task_id
        await asyncio.sleep(0.005)
    raise AssertionError("nothing became pending")


async def test_async_function_runs_only_after_approval(machine: HITLStateMachine) -> None:
    ran: list[tuple[str, int]] = []

    @requires_approval(reason="Deploy {version} to {env}", severity="critical", machine=machine)
    async def deploy(env: str, version: str, replicas: int = 3) -> str:
        ran.append((env, replicas))
        return f"deployed {version}"

    call = asyncio.create_task(deploy("prod", "1.2.3"))
    task_id = await _decide_first_pending(machine, "approve")
    assert await call == "deployed 1.2.3"
    assert ran == [("prod", 3)]
    task = await machine.get_task(task_id)
    assert task is not None and task.state == TaskState.COMPLETED and task.result == "deployed 1.2.3"
    ip_entry = next(h for h in task.history if h["action"] == "request_approval")
    assert ip_entry["reason"] == "Deploy 1.2.3 to prod" and ip_entry["severity"] == "critical"


async def test_reject_raises_approval_rejected_with_reason_and_actor(machine: HITLStateMachine) -> None:
    @requires_approval(reason="Drop table", machine=machine)
    async def drop(table: str) -> None:
        raise AssertionError("must not run")

    call = asyncio.create_task(drop("users"))
    task_id = await _decide_first_pending(machine, "reject", reason="not on a Friday")
    with pytest.raises(ApprovalRejected) as info:
        await call
    assert info.value.reason == "not on a Friday" and info.value.actor == "bob"
    task = await machine.get_task(task_id)
    assert task is not None and task.state == TaskState.FAILED and "not on a Friday" in (task.error or "")


async def test_edit_runs_the_function_with_edited_args(machine: HITLStateMachine) -> None:
    @requires_approval(machine=machine)
    async def transfer(to: str, amount: int) -> tuple[str, int]:
        return to, amount

    call = asyncio.create_task(transfer("acme", 5000))
    task_id = await _decide_first_pending(machine, "edit", args={"amount": 500})
    assert await call == ("acme", 500)
    task = await machine.get_task(task_id)
    assert task is not None and task.interrupt_point is None
    assert task.decision is not None and task.decision.edited_args == {"amount": 500}


async def test_deadline_applies_reject_by_default_recorded_as_timeout(machine: HITLStateMachine) -> None:
    @requires_approval(machine=machine, timeout=0.05)
    async def risky() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ApprovalRejected) as info:
        await risky()
    assert info.value.decision.type == "timeout" and info.value.actor == "hitl:timeout"


async def test_deadline_may_default_to_approve_when_configured() -> None:
    config = parse_config("[deadlines]\nsweep = false\nallow_default_approve = true\n")
    async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as machine:

        @requires_approval(machine=machine, timeout=0.05, default_decision="approve")
        async def routine() -> str:
            return "done"

        assert await routine() == "done"
        [task] = await machine.get_all_tasks()
        assert task.decision is not None and (task.decision.type, task.decision.outcome) == ("timeout", "approve")
        assert task.decision.actor.id == "hitl:timeout"


async def test_agent_chosen_default_approve_is_refused_without_config(machine: HITLStateMachine) -> None:
    @requires_approval(machine=machine, timeout=0.05, default_decision="approve")
    async def routine() -> str:
        raise AssertionError("must not run")

    with pytest.raises(PayloadError, match=r"default_decision='approve' is refused.*allow_default_approve"):
        await routine()
    assert await machine.get_all_tasks() == []  # refused before anything was recorded


def test_sync_decorator_default_approve_is_refused_without_config(machine: HITLStateMachine) -> None:
    @requires_approval(machine=machine, timeout=0.05, default_decision="approve")
    def routine() -> str:
        raise AssertionError("must not run")

    with pytest.raises(PayloadError, match="allow_default_approve"):
        routine()
    assert machine.sync.get_all_tasks() == []


async def test_unserialisable_arguments_are_refused_before_anything_runs(machine: HITLStateMachine) -> None:
    @requires_approval(machine=machine)
    async def send(conn: object) -> None:
        raise AssertionError("must not run")

    with pytest.raises(PayloadError):
        await send(object())
    [task] = await machine.get_all_tasks()
    assert task.state == TaskState.FAILED


def test_sync_function_waits_for_a_decision_from_another_thread(machine: HITLStateMachine) -> None:
    @requires_approval(reason="Send email to {to}", machine=machine)
    def send_email(to: str) -> str:
        return f"sent to {to}"

    def operator() -> None:
        for _ in range(500):
            pending = machine.sync.get_pending_approvals()
            if pending:
                machine.sync.approve(pending[0].task_id, actor="alice")
                return
            time.sleep(0.005)

    t = threading.Thread(target=operator)
    t.start()
    assert send_email("ceo@example.com") == "sent to ceo@example.com"
    t.join()
    machine.sync.close()


async def test_interruptible_async_pauses_at_a_checkpoint_and_resumes(machine: HITLStateMachine) -> None:
    steps: list[int] = []
    reached = asyncio.Event()
    go_on = asyncio.Event()

    @interruptible(machine=machine, task_id=lambda: "migration")
    async def migrate() -> int:
        for i in range(3):
            if i == 1:
                reached.set()
                await go_on.wait()
            await acheckpoint()
            steps.append(i)
        return len(steps)

    run = asyncio.create_task(migrate())
    await reached.wait()
    paused = await machine.pause("migration", "alice", "check the schema first")
    assert paused.state == TaskState.AWAITING_APPROVAL and paused.interrupt_point is not None
    assert paused.interrupt_point.kind == "review"
    go_on.set()
    await asyncio.sleep(0.05)
    assert steps == [0], "the function must wait at its checkpoint while paused"
    await machine.approve("migration", actor="alice")
    assert await run == 3
    task = await machine.get_task("migration")
    assert task is not None and task.state == TaskState.COMPLETED
    assert [h["action"] for h in task.history] == ["start", "pause", "approve", "resume", "complete"]


async def test_interruptible_reject_stops_the_function(machine: HITLStateMachine) -> None:
    reached = asyncio.Event()
    go_on = asyncio.Event()

    @interruptible(machine=machine, task_id=lambda: "job")
    async def job() -> None:
        reached.set()
        await go_on.wait()
        await acheckpoint()
        raise AssertionError("must not get past the checkpoint")

    run = asyncio.create_task(job())
    await reached.wait()
    await machine.pause("job", "alice", "stop it")
    go_on.set()
    await asyncio.sleep(0.02)
    await machine.reject("job", actor="alice", message="wrong table")
    with pytest.raises(ApprovalRejected, match="wrong table"):
        await run
    task = await machine.get_task("job")
    assert task is not None and task.state == TaskState.FAILED


def test_interruptible_sync_pauses_at_checkpoint(machine: HITLStateMachine) -> None:
    reached = threading.Event()
    go_on = threading.Event()
    steps: list[int] = []

    @interruptible(machine=machine, task_id=lambda: "sync-job", check_interval=0.01)
    def job() -> int:
        for i in range(3):
            if i == 1:
                reached.set()
                go_on.wait(5)
            checkpoint()
            steps.append(i)
        return len(steps)

    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(job()))
    worker.start()
    assert reached.wait(5)
    machine.sync.pause("sync-job", "alice", "look")
    go_on.set()
    time.sleep(0.1)
    assert steps == [0]
    machine.sync.approve("sync-job", actor="alice")
    worker.join(5)
    assert result == [3]
    machine.sync.close()


async def test_a_pause_after_the_last_checkpoint_is_honoured_before_completing(machine: HITLStateMachine) -> None:
    finished = asyncio.Event()
    go_on = asyncio.Event()

    @interruptible(machine=machine, task_id=lambda: "late")
    async def job() -> str:
        await acheckpoint()
        finished.set()
        await go_on.wait()
        return "done"

    run = asyncio.create_task(job())
    await finished.wait()
    await machine.pause("late", "alice", "hold on")
    await machine.approve("late", actor="alice")  # decided before the function even returns
    go_on.set()
    assert await run == "done"
    task = await machine.get_task("late")
    assert task is not None and task.state == TaskState.COMPLETED
    assert [h["action"] for h in task.history][-3:] == ["approve", "resume", "complete"]


async def test_a_restarted_call_with_a_stable_task_id_adopts_the_waiting_task() -> None:
    """The agent process died while waiting; the restarted one must not ask a second time."""
    store_machine = HITLStateMachine("memory://", load_entrypoints=False)

    @requires_approval(machine=store_machine, task_id=lambda order: f"refund-{order}")
    async def refund(order: int) -> str:
        return f"refunded {order}"

    asked = asyncio.Event()
    store_machine.add_callback(lambda *_: asked.set(), state=TaskState.AWAITING_APPROVAL)
    first = asyncio.create_task(refund(7))
    await asyncio.wait_for(asked.wait(), 5)
    first.cancel()  # the first process "dies" while waiting
    await store_machine.approve("refund-7", actor="alice")  # decided while nobody waits
    assert await refund(7) == "refunded 7"  # the restarted call picks the decision up
    task = await store_machine.get_task("refund-7")
    assert task is not None and task.state == TaskState.COMPLETED
    assert [h["action"] for h in task.history].count("request_approval") == 1


async def test_decorator_timeout_before_the_wall_clock_deadline_waits_for_it_to_approve() -> None:
    """Our wait ran out a moment before the deadline (the two clocks differ): an approving default
    is applied only once the deadline has really passed, never early."""
    from datetime import UTC, datetime

    from hitl_core.decorators import _expire

    config = parse_config("[deadlines]\nsweep = false\nallow_default_approve = true\n")
    async with HITLStateMachine("memory://", load_entrypoints=False, config=config) as machine:
        await machine.start_task("t")
        asked = await machine.request_approval("t", "why", timeout=0.3, default_decision="approve")
        assert asked.interrupt_point is not None and asked.interrupt_point.deadline is not None
        decision = await _expire(machine, "t")
        assert datetime.now(UTC) >= asked.interrupt_point.deadline
        assert (decision.type, decision.outcome) == ("timeout", "approve")
