"""``hitl demo``'s policy on its simulated fleet (headless, time scaled down): each policy shows up."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from hitl_core import HITLError, HITLStateMachine, TaskState
from hitl_core.policies.demo import DEMO_COLLEAGUE, demo_config
from hitl_tui.fleet import Fleet

OPERATOR = "operator"


async def test_demo_fleet_shows_expiry_escalation_four_eyes_and_auto_approval() -> None:
    machine = HITLStateMachine("memory://", load_entrypoints=False, config=demo_config(OPERATOR, scale=0.02))
    fleet = Fleet(machine, agents=8, rate=40.0, seed=3, work_seconds=0.05)
    fleet.colleague = DEMO_COLLEAGUE
    fleet.colleague_delay = (0.05, 0.2)

    async def operator() -> None:
        """Gives the second approval of four-eyes requests once the colleague gave the first."""
        while True:
            for task in await machine.get_pending_approvals():
                if task.approvals and task.approvals[0].actor.id == DEMO_COLLEAGUE:
                    with contextlib.suppress(HITLError):
                        await machine.approve(task.task_id, OPERATOR, interrupt_id=task.interrupt_point.interrupt_id)
            await asyncio.sleep(0.05)

    async with machine:
        runs = [asyncio.create_task(fleet.run()), asyncio.create_task(operator())]
        seen: Counter[str] = Counter()
        for _ in range(200):
            await asyncio.sleep(0.05)
            events = await machine.events()
            seen = Counter(e.action for e in events)
            seen.update(f"{e.actor.id}" for e in events if e.actor is not None)
            if (
                seen["escalate"]
                and seen["hitl:timeout"]
                and seen["policy:routine-search"]
                and seen["approve_partial"]
                and seen[OPERATOR]
            ):
                break
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
    assert seen["escalate"], "an escalation"
    assert seen["hitl:timeout"], "a deadline expiring"
    assert seen["policy:routine-search"], "an auto-approved routine task"
    assert seen["approve_partial"] and seen[OPERATOR], "a four-eyes approval: the colleague's, then the operator's"
    final = next(e for e in events if e.action == "approve" and e.actor is not None and e.actor.id == OPERATOR)
    before = next(e for e in events if e.task_id == final.task_id and e.version == final.version - 1)
    assert before.action == "approve_partial" and before.actor is not None and before.actor.id == DEMO_COLLEAGUE
    assert final.to_state == TaskState.APPROVED
