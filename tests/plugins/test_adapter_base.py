"""The shared adapter lifecycle (``hitl_core.adapters``), through the worked example of docs/adapters.md."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from examples.custom_adapter import ToyAgent, ToyApprovals
from hitl_core import Action, Actor, Decision, HITLError, HITLStateMachine, NotAuthorizedError, PayloadError, TaskState
from hitl_core.adapters import Request, RetryDeclinedError, tool_severity

ROOT = Path(__file__).resolve().parents[2]
PAY_BOB = [("transfer", {"to": "bob", "amount": 5})]


def _agent(log: list[str] | None = None, fail: list[bool] | None = None) -> ToyAgent:
    def transfer(to: str, amount: int) -> str:
        if fail:
            fail.pop()
            raise RuntimeError("the bank is down")
        if log is not None:
            log.append(f"{to}:{amount}")
        return f"sent {amount} to {to}"

    return ToyAgent({"transfer": transfer})


async def _pending(machine: HITLStateMachine, count: int = 1) -> list:
    for _ in range(2000):
        pending = await machine.get_pending_approvals()
        if len(pending) >= count:
            return sorted(pending, key=lambda t: t.task_id)
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} pending approvals")


@pytest.fixture
async def machine() -> HITLStateMachine:
    m = HITLStateMachine("memory://", load_entrypoints=False)
    yield m
    await m.close()


def test_the_worked_example_of_docs_adapters_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "examples.custom_adapter"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "sent 4 to bob",
        "Tool call rejected by alice: eve is not a known payee",
        "toy:r1: completed (running)",
        "toy:r1:call_0: completed (transfer)",
        "toy:r1:call_1: completed (transfer)",
    ]


def test_decision_knows_its_effective_type_and_its_rejection_text() -> None:
    who = Actor(id="alice")
    assert Decision(type="edit", actor=who).effective_type == "edit"
    assert Decision(type="timeout", actor=who, outcome="approve").effective_type == "approve"
    assert Decision(type="policy", actor=who).effective_type == "reject"  # no outcome: fail closed
    assert Decision(type="reject", actor=who, message="no").rejection_text() == "Tool call rejected by alice: no"
    assert Decision(type="reject", actor=who).rejection_text("The refund call was") == (
        "The refund call was rejected by alice."
    )


async def test_ask_narrows_allowed_decisions_to_what_the_adapter_can_carry_back(machine: HITLStateMachine) -> None:
    adapter = ToyApprovals(machine)
    task_id = await adapter.ask("toy:r:1", "r", Request(reason="why", allowed_decisions=("approve", "respond", "edit")))
    task = await machine.get_task(task_id)
    assert task.interrupt_point.allowed_decisions == ["approve", "edit"]
    with pytest.raises(HITLError, match="can carry back none of \\['respond'\\]"):
        await adapter.ask("toy:r:2", "r", Request(reason="why", allowed_decisions=("respond",)))
    # refused for what it asks, the task does not stay RUNNING (a ghost on every console)
    refused = await machine.get_task("toy:r:2")
    assert refused.state is TaskState.FAILED and "can carry back none of" in refused.error


async def test_a_request_refused_by_the_config_fails_its_task_instead_of_leaving_it_running() -> None:
    """A default approve the config does not allow: the caller hears why, the task is FAILED."""
    from hitl_core.policies import parse_config

    machine = HITLStateMachine("memory://", load_entrypoints=False, config=parse_config("[deadlines]\nsweep = false\n"))
    adapter = ToyApprovals(machine)
    with pytest.raises(PayloadError, match="allow_default_approve"):
        await adapter.ask("toy:r:1", "r", Request(reason="why", default_decision="approve"))
    task = await machine.get_task("toy:r:1")
    assert task.state is TaskState.FAILED and "allow_default_approve" in task.error
    await machine.close()


async def test_a_decision_the_adapter_cannot_carry_back_fails_the_task_and_runs_nothing(
    machine: HITLStateMachine,
) -> None:
    # Forged: a toy task asked directly through the public API, allowing what the adapter can't carry.
    await machine.start_task("toy:r:1", framework="toy", run_id="r")
    await machine.request_approval("toy:r:1", "why", allowed_decisions=["approve", "respond"])
    await machine.respond("toy:r:1", "yes please", "mallory")
    with pytest.raises(HITLError, match="cannot carry 'respond' back"):
        await ToyApprovals(machine).decisions(["toy:r:1"])
    assert (await machine.get_task("toy:r:1")).state is TaskState.FAILED


async def test_an_entry_point_adapter_refuses_a_decision_it_cannot_carry_back() -> None:
    machine = HITLStateMachine("memory://")  # loads the adapters' entry points
    await machine.start_task("t", framework="openai-agents")
    await machine.request_approval("t", "pay?", action="pay", args={"to": "bob"})  # allows all four
    with pytest.raises(NotAuthorizedError, match="openai-agents adapter cannot carry 'edit' back"):
        await machine.edit("t", {"to": "mallory"}, "mallory")
    assert (await machine.get_task("t")).state is TaskState.AWAITING_APPROVAL
    await machine.close()


async def test_of_two_adapters_exactly_one_claims_a_decided_batch(machine: HITLStateMachine) -> None:
    first, second = ToyApprovals(machine), ToyApprovals(machine)
    ids = [await first.ask(f"toy:r:{n}", "r", Request(reason="why")) for n in range(3)]
    for task_id in ids:
        await machine.approve(task_id, "alice")
    claims = await asyncio.gather(first.claim(ids), second.claim(ids))
    assert sorted(c is None for c in claims) == [False, True]
    winner = first if claims[0] is not None else second
    assert await winner.claim(ids) == sorted(ids)  # its own claims are still its own
    assert await (second if winner is first else first).claim(ids, takeover=True) == sorted(ids)


async def test_completed_tasks_keep_their_own_step_not_a_claim_token(machine: HITLStateMachine) -> None:
    running = asyncio.create_task(ToyApprovals(machine).run(_agent(), PAY_BOB, "r"))
    [task] = await _pending(machine)
    await machine.approve(task.task_id, "alice")
    await running
    done = await machine.get_task(task.task_id)
    assert done.state is TaskState.COMPLETED and done.current_step == "transfer"


async def test_a_failed_run_is_asked_again_and_an_approved_retry_carries_the_same_decision(
    machine: HITLStateMachine,
) -> None:
    log: list[str] = []
    adapter = ToyApprovals(machine)
    running = asyncio.create_task(adapter.run(_agent(log, fail=[True]), PAY_BOB, "r"))
    [task] = await _pending(machine)
    await machine.edit(task.task_id, {"to": "bob", "amount": 4}, "alice")
    with pytest.raises(RuntimeError, match="the bank is down"):
        await running
    assert (await machine.get_task(task.task_id)).state is TaskState.FAILED
    [retry] = await _pending(machine)
    assert retry.task_id == f"{task.task_id}~1" and retry.interrupt_point.allowed_decisions == ["approve", "reject"]
    await machine.approve(retry.task_id, "bob")
    assert await adapter.run(_agent(log), PAY_BOB, "r") == ["sent 4 to bob"]  # alice's edit, again
    assert log == ["bob:4"]


async def test_a_declined_retry_gives_the_run_up(machine: HITLStateMachine) -> None:
    log: list[str] = []
    adapter = ToyApprovals(machine)
    running = asyncio.create_task(adapter.run(_agent(log, fail=[True]), PAY_BOB, "r"))
    [task] = await _pending(machine)
    await machine.approve(task.task_id, "alice")
    with pytest.raises(RuntimeError):
        await running
    [retry] = await _pending(machine)
    await machine.reject(retry.task_id, "bob", "not today")
    with pytest.raises(RetryDeclinedError, match="bob declined to retry the failed resume: not today"):
        await adapter.run(_agent(log), PAY_BOB, "r")
    assert log == []
    states = {t.task_id: t.state for t in await machine.get_all_tasks()}
    assert states == {"toy:r": TaskState.FAILED, task.task_id: TaskState.FAILED, retry.task_id: TaskState.FAILED}


async def test_waiting_past_the_deadline_applies_the_default_reject(machine: HITLStateMachine) -> None:
    log: list[str] = []
    outputs = await ToyApprovals(machine, timeout=0.2).run(_agent(log), PAY_BOB, "r")
    assert outputs == ["Tool call rejected by hitl:timeout: no decision before the deadline"] and log == []


async def test_a_pause_asked_again_after_a_crash_between_fail_and_retry_gets_its_retry_question(
    machine: HITLStateMachine,
) -> None:
    adapter = ToyApprovals(machine)
    task_id = await adapter.ask("toy:r:1", "r", Request(reason="pay bob", step="transfer"))
    await machine.approve(task_id, "alice")
    assert await adapter.claim([task_id]) == [task_id]
    await machine.fail(task_id, "the process died mid-delivery")  # and never asked the retry
    retry_id = await ToyApprovals(machine).ask("toy:r:1", "r", Request(reason="pay bob", step="transfer"))
    retry = await machine.get_task(retry_id)
    assert retry_id == "toy:r:1~1" and retry.state is TaskState.AWAITING_APPROVAL
    assert retry.interrupt_point.allowed_decisions == ["approve", "reject"]
    assert retry.interrupt_point.context["retry"] == {
        "failed_task": "toy:r:1",
        "error": "the process died mid-delivery",
        "decision": "approve",
        "decided_by": "alice",
    }


def test_two_threads_ask_and_claim_at_once_on_a_fresh_machine_and_both_tasks_wait(tmp_path: Path) -> None:
    """smolagents runs one step's two tool calls in two threads, each blocking in ``ask_and_claim``
    through ``machine.sync``; the first call of both threads races to create the facade and to open
    the run's parent and the SQLite store. Both questions must reach a person, every time."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows in a few rounds
    try:
        for round_ in range(25):
            url = f"sqlite:///{tmp_path / f'hitl-{round_}.db'}"
            machine = HITLStateMachine(url, load_entrypoints=False)
            adapter = ToyApprovals(machine)
            start = threading.Barrier(2)
            outcomes: list[object] = []

            def call(
                n: int,
                adapter: ToyApprovals = adapter,
                start: threading.Barrier = start,
                outcomes: list[object] = outcomes,
            ) -> None:
                start.wait()
                try:
                    adapter.run_sync(adapter.open_run("r"))
                    request = Request(reason=f"pay {n}?")
                    outcomes.append(adapter.run_sync(adapter.ask_and_claim(f"toy:r:{n}", "r", request, parent=True)))
                except Exception as exc:  # reported by the assertion below, not lost in the thread
                    outcomes.append(exc)

            # The reviewer makes the file first: two machines creating one new file's schema at once
            # is another matter; here the agent's machine, its facade and its store open in the race.
            reviewer = HITLStateMachine(url, load_entrypoints=False)
            reviewer.sync.run(reviewer.open())
            threads = [threading.Thread(target=call, args=(n,), daemon=True) for n in range(2)]
            for t in threads:
                t.start()
            try:
                deadline = time.monotonic() + 60
                while len(waiting := reviewer.sync.run(reviewer.get_pending_approvals())) < 2:
                    assert time.monotonic() < deadline, (
                        f"round {round_}: {len(waiting)} of 2 questions reached a person; {outcomes}"
                    )
                    time.sleep(0.02)
                assert {t.parent_id for t in waiting} == {"toy:r"}
                for task in waiting:
                    reviewer.sync.run(reviewer.reject(task.task_id, "alice", "not today"))
                for t in threads:
                    t.join(timeout=60)
                assert [getattr(o, "type", o) for o in outcomes] == ["reject", "reject"]
            finally:
                reviewer.sync.close_machine()
                machine.sync.close_machine()
    finally:
        sys.setswitchinterval(previous)


def test_a_tool_call_severity_rule_reads_the_requests_action() -> None:
    """``tool_severity``: the rule over (tool name, args) the tool-call adapters take, asked of a Request."""
    rule = tool_severity(lambda name, args: "critical" if args.get("amount", 0) > 1000 else "low")
    assert callable(rule)
    assert rule(Request(reason="pay", action=Action(name="pay", args={"amount": 5000}))) == "critical"
    assert rule(Request(reason="pay", action=Action(name="pay", args={"amount": 5}))) == "low"
    with pytest.raises(HITLError, match="without an action"):
        rule(Request(reason="no call"))
    assert tool_severity("high") == "high"
