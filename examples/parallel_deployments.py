"""The seed's second example: three deployments wait at once; an operator clears them in any order."""

from __future__ import annotations

import asyncio

from hitl_core import HITLStateMachine, TaskState

REGIONS = {"eu-west": "high", "us-east": "critical", "ap-south": "medium"}


async def deploy(machine: HITLStateMachine, region: str, severity: str) -> str:
    task_id = f"deploy-{region}"
    await machine.start_task(task_id, metadata={"region": region}, agent=f"deployer-{region}")
    await machine.request_approval(
        task_id,
        reason=f"Roll out v2.0 to {region}",
        context={"region": region},
        severity=severity,
        action="deploy",
        args={"region": region, "version": "2.0"},
    )
    decision = await machine.wait_for_decision(task_id)
    await machine.resume(task_id)
    if not decision.approved:
        await machine.complete(task_id, result={"skipped": decision.message})
        return f"{region}: skipped ({decision.message})"
    await asyncio.sleep(0.01)  # the deployment itself
    await machine.complete(task_id, result={"deployed": "2.0"})
    return f"{region}: deployed by approval of {decision.actor.id}"


async def operator(machine: HITLStateMachine, all_waiting: asyncio.Event) -> None:
    await all_waiting.wait()
    # Riskiest first, as the console sorts them.
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    for task in sorted(await machine.get_pending_approvals(), key=lambda t: order[t.interrupt_point.severity]):
        if task.task_id == "deploy-ap-south":
            await machine.reject(task.task_id, actor="alice", message="freeze in ap-south until Monday")
        else:
            await machine.approve(task.task_id, actor="alice")


async def run() -> None:
    machine = HITLStateMachine()
    all_waiting = asyncio.Event()

    async def count_waiting(*_: object) -> None:
        if len(await machine.get_pending_approvals()) == len(REGIONS):
            all_waiting.set()

    machine.add_callback(count_waiting, state=TaskState.AWAITING_APPROVAL)
    results, _ = await asyncio.gather(
        asyncio.gather(*(deploy(machine, r, s) for r, s in REGIONS.items())), operator(machine, all_waiting)
    )
    for line in results:
        print(line)
    completed = await machine.get_tasks_by_state(TaskState.COMPLETED)
    print(f"{len(completed)} tasks completed; audit chain ok: {(await machine.verify()).ok}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
