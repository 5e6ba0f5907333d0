"""The seed's first example: a critical production deploy, approved by alice."""

from __future__ import annotations

import asyncio

from hitl_core import HITLStateMachine


async def run() -> None:
    machine = HITLStateMachine()
    await machine.start_task("deploy_prod", metadata={"env": "prod"})
    task = await machine.request_approval(
        "deploy_prod",
        reason="Deploy v1.2.3 to production",
        context={"version": "1.2.3", "replicas": 6},
        options=["proceed", "cancel"],
        severity="critical",
    )
    print(f"{task.task_id}: {task.state} — {task.interrupt_point.reason} [{task.interrupt_point.severity}]")
    task = await machine.approve("deploy_prod", actor="alice", option="proceed")
    print(f"{task.task_id}: {task.state} by {task.approval_data['approver']}")
    await machine.resume("deploy_prod")
    task = await machine.complete("deploy_prod", result={"deployed": "1.2.3"})
    print(f"{task.task_id}: {task.state}, result {task.result}, {len(task.history)} events")
    print(f"audit chain: {await machine.verify()}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
