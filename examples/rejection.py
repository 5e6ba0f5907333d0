"""The seed's third example: a rejection, and the agent going on with the reason as feedback."""

from __future__ import annotations

import asyncio

from hitl_core import HITLStateMachine


async def run() -> None:
    machine = HITLStateMachine()
    await machine.start_task("cleanup", agent="db-janitor")
    await machine.request_approval(
        "cleanup", reason="DELETE FROM orders WHERE created < 2020", context={"rows": 182_334}, severity="high"
    )
    task = await machine.reject("cleanup", actor="bob", message="archive them first; never delete orders")
    print(f"{task.task_id}: {task.state} by {task.approval_data['rejector']}: {task.approval_data['reason']}")
    task = await machine.resume("cleanup")  # the agent reads the feedback and changes plan
    print(f"agent continues ({task.state}) with feedback: {task.decision.message!r}")
    await machine.request_approval(
        "cleanup", reason="Archive orders before 2020 to cold storage", context={"rows": 182_334}, severity="medium"
    )
    await machine.approve("cleanup", actor="bob")
    await machine.resume("cleanup")
    task = await machine.complete("cleanup", result={"archived": 182_334})
    print(f"{task.task_id}: {task.state}; history: {' → '.join(h['action'] for h in task.history)}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
