"""A waiter woken by the stream's decision event returns that decision without reading the task
again; these show it is the task's own decision, and never an older one of the same task."""

from __future__ import annotations

import asyncio

import pytest

from hitl_core import DecisionType, HITLStateMachine

from .conftest import ServerFactory

pytestmark = pytest.mark.processes


async def _parked(agent: HITLStateMachine, task_id: str) -> asyncio.Task:  # type: ignore[type-arg]
    """The agent's wait, once it has read the task and is parked on the stream."""
    waiting = asyncio.create_task(agent.wait_for_decision(task_id, timeout=120))
    for _ in range(2400):
        if agent._waiters.get(task_id) and agent._followers:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert not waiting.done()
    return waiting


async def test_a_waiter_gets_the_tasks_decision_and_never_the_one_before(start_server: ServerFactory) -> None:
    server = start_server()
    agent = HITLStateMachine(server.unix_url, load_entrypoints=False)
    operator = HITLStateMachine(server.unix_url, load_entrypoints=False)
    try:
        await agent.start_task("twice")
        await agent.request_approval("twice", "first ask", args={"amount": 1})
        waiting = await _parked(agent, "twice")
        await operator.reject("twice", None, "not yet")
        first = await waiting
        assert first.type is DecisionType.REJECT and first.message == "not yet"
        assert first == (await operator.get_task("twice")).decision

        # Asked again: the earlier rejection is history; the waiter must block for the new decision.
        await agent.resume("twice")
        await agent.request_approval("twice", "second ask", args={"amount": 2})
        waiting = await _parked(agent, "twice")
        # A stream that lags delivers the old rejection's event now: it is older than the task the
        # waiter read, so the waiter reads again and keeps waiting.
        [old] = [e for e in await agent.events(task_id="twice") if e.action == "reject"]
        agent._wake("twice", old.to_state, old)  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await operator.approve("twice", None, comment="now")
        second = await waiting
        assert second.type is DecisionType.APPROVE and second.message == "now"
        assert second == (await operator.get_task("twice")).decision
    finally:
        await agent.close()
        await operator.close()
