"""No waiter outlives its decision: the follower covers every waiter from the moment it reads the task.

The defect this pins down (found as a 180 s timeout under load in the PostgreSQL restart test):
only the first caller of ``_ensure_follower`` waited for the follower to take its starting point
(``after = await store.last_seq()``). A second waiter returned at once, read its task as still
waiting and slept on its future; a decision committed before the follower's ``last_seq()``
returned was behind the follower's starting point and was never delivered.

The store's ``last_seq`` is held on a gate so the window is wide open on every run, on every
shared backend: memory (two machines in one process) and SQLite (one file).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskState
from hitl_core.stores.memory import MemoryStore
from hitl_core.stores.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def two_machines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[HITLStateMachine, HITLStateMachine]]:
    """The agent's machine and the operator's machine on one shared store (separate store objects for SQLite)."""
    if request.param == "memory":
        shared = MemoryStore()
        agent, operator = (HITLStateMachine(shared, load_entrypoints=False) for _ in range(2))
    else:
        url = f"sqlite:///{tmp_path / 'hitl.db'}"
        agent = HITLStateMachine(SqliteStore(url), load_entrypoints=False)
        operator = HITLStateMachine(SqliteStore(url), load_entrypoints=False)
    yield agent, operator
    await agent.close()
    await operator.close()


class Gate:
    """Holds ``store.last_seq()`` until opened; says when the follower has reached it."""

    def __init__(self, original: Callable[[], Awaitable[int]]) -> None:
        self.original = original
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def last_seq(self) -> int:
        self.reached.set()
        await self.opened.wait()
        return await self.original()


async def _ask(machine: HITLStateMachine, *task_ids: str) -> None:
    for task_id in task_ids:
        await machine.start_task(task_id)
        await machine.request_approval(task_id, f"may I run {task_id}?")


async def _reads_of(machine: HITLStateMachine, task_id: str) -> asyncio.Event:
    """An event set when ``machine`` reads ``task_id`` from its store."""
    read = asyncio.Event()
    original = machine.store.get

    async def get(tid: str):  # type: ignore[no-untyped-def]
        record = await original(tid)
        if tid == task_id:
            read.set()
        return record

    machine.store.get = get  # type: ignore[method-assign]
    return read


async def test_second_waiter_gets_a_decision_committed_before_the_follower_started(
    two_machines: tuple[HITLStateMachine, HITLStateMachine],
) -> None:
    agent, operator = two_machines
    await _ask(operator, "a", "b")
    await agent._ready()  # open the store before gating it
    gate = Gate(agent.store.last_seq)
    agent.store.last_seq = gate.last_seq  # type: ignore[method-assign]
    b_read = await _reads_of(agent, "b")

    wait_a = asyncio.create_task(agent.wait_for_decision("a", timeout=30))
    await asyncio.wait_for(gate.reached.wait(), 10)  # the follower is stuck at its starting point
    wait_b = asyncio.create_task(agent.wait_for_decision("b", timeout=30))
    # Give the defective path the chance to read "b" as waiting; the fixed path reads it only
    # once the follower has its starting point, so this wait simply times out there.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(b_read.wait(), 0.5)

    await operator.approve("b", actor="alice")  # committed before the follower's last_seq()
    gate.opened.set()

    decision = await asyncio.wait_for(wait_b, 20)
    assert decision.approved and decision.actor.id == "alice"
    await operator.reject("a", actor="bob", message="not now")
    decision_a = await asyncio.wait_for(wait_a, 20)
    assert not decision_a.approved and decision_a.actor.id == "bob"


async def test_a_follower_that_cannot_start_fails_every_waiter_instead_of_stranding_them(
    two_machines: tuple[HITLStateMachine, HITLStateMachine],
) -> None:
    """The waiters that queued behind a follower whose start failed are told, not left hanging."""
    agent, operator = two_machines
    await _ask(operator, "a", "b")
    await agent._ready()
    gate = Gate(agent.store.last_seq)
    failing = asyncio.Event()

    async def last_seq() -> int:
        await gate.last_seq()
        if failing.is_set():
            raise OSError("the store went away")
        return await gate.original()

    agent.store.last_seq = last_seq  # type: ignore[method-assign]
    waits = [asyncio.create_task(agent.wait_for_decision(t, timeout=30)) for t in ("a", "b")]
    await asyncio.wait_for(gate.reached.wait(), 10)
    failing.set()
    gate.opened.set()
    for wait in waits:
        with pytest.raises(OSError, match="went away"):
            await asyncio.wait_for(wait, 20)
    # The next waiter starts a fresh follower and is served.
    failing.clear()
    wait_b = asyncio.create_task(agent.wait_for_decision("b", timeout=30))
    await operator.approve("b", actor="alice")
    assert (await asyncio.wait_for(wait_b, 20)).approved


async def test_pause_watch_and_state_wait_are_covered_too(
    two_machines: tuple[HITLStateMachine, HITLStateMachine],
) -> None:
    """``watch_pause`` and ``wait_for_state`` share the follower, so they share the guarantee."""
    agent, operator = two_machines
    await operator.start_task("r")
    await _ask(operator, "a")
    await agent._ready()
    gate = Gate(agent.store.last_seq)
    agent.store.last_seq = gate.last_seq  # type: ignore[method-assign]

    wait_a = asyncio.create_task(agent.wait_for_decision("a", timeout=30))
    await asyncio.wait_for(gate.reached.wait(), 10)
    waiting_for_pause = asyncio.create_task(agent.wait_for_state("r", [TaskState.AWAITING_APPROVAL], timeout=30))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting_for_pause), 0.5)
    await operator.pause("r", actor="carol", reason="let me look")
    gate.opened.set()
    task = await asyncio.wait_for(waiting_for_pause, 20)
    assert task.state == TaskState.AWAITING_APPROVAL
    await operator.approve("a", actor="alice")
    await asyncio.wait_for(wait_a, 20)


async def test_a_store_read_failing_after_the_decision_arrived_does_not_lose_the_wake_up(
    two_machines: tuple[HITLStateMachine, HITLStateMachine],
) -> None:
    """The follower heard of the decision but could not read the task (the store went away, and
    was still away when it looked again): it must hear of the decision once more, not skip it."""
    agent, operator = two_machines
    await _ask(operator, "a")
    waiting = asyncio.create_task(agent.wait_for_decision("a", timeout=30))
    await asyncio.sleep(0)
    original = agent.store.get
    failures = {"left": 0}

    async def flaky_get(task_id: str):  # type: ignore[no-untyped-def]
        task = asyncio.current_task()
        follower = task is not None and task.get_name() == "hitl-follow"  # others read as usual
        if task_id == "a" and failures["left"] and follower:
            failures["left"] -= 1
            raise OSError("connection lost")
        return await original(task_id)

    # Let the waiter settle on its future first (it reads the task once, unarmed).
    for _ in range(200):
        if "a" in agent._waiters and agent._followers:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    agent.store.get = flaky_get  # type: ignore[method-assign]
    failures["left"] = 2  # the follower's read, and its re-check after the backoff
    await operator.approve("a", actor="alice")
    decision = await asyncio.wait_for(waiting, 20)
    assert decision.approved and failures["left"] == 0


async def test_the_follower_stops_once_nobody_waits_and_a_new_waiter_starts_it_again(
    two_machines: tuple[HITLStateMachine, HITLStateMachine],
) -> None:
    """An idle agent does not poll the store: its follower stops ``follower_linger`` after the last
    waiter left; the next waiter gets a fresh one and its decision all the same."""
    agent, operator = two_machines
    agent.follower_linger = 0.05
    await _ask(operator, "a", "b")
    waiting = asyncio.create_task(agent.wait_for_decision("a", timeout=30))
    for _ in range(500):
        if agent._followers:
            break
        await asyncio.sleep(0.01)
    [(follower, _)] = agent._followers.values()
    await operator.approve("a", actor="alice")
    assert (await asyncio.wait_for(waiting, 20)).approved
    for _ in range(500):
        if follower.done():
            break
        await asyncio.sleep(0.01)
    assert follower.done() and not agent._followers
    waiting = asyncio.create_task(agent.wait_for_decision("b", timeout=30))
    for _ in range(500):
        if agent._followers and "b" in agent._waiters:
            break
        await asyncio.sleep(0.01)
    await operator.reject("b", actor="bob", message="no")
    assert not (await asyncio.wait_for(waiting, 20)).approved
