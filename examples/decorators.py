"""The two decorators: ``@requires_approval`` (sync and async) and ``@interruptible``.

An "operator" coroutine plays the person at the console: it approves the refund with edited args,
rejects the email, and pauses then resumes the migration.
"""

from __future__ import annotations

import asyncio

from hitl_core import (
    ApprovalRejected,
    HITLStateMachine,
    TaskState,
    acheckpoint,
    interruptible,
    requires_approval,
)

machine = HITLStateMachine()


@requires_approval(reason="Refund ${amount} on order {order}", severity="high", machine=machine)
async def refund(order: int, amount: int) -> str:
    return f"refunded ${amount} on order {order}"


@requires_approval(reason="Email {to}", machine=machine, timeout=5)
async def send_email(to: str, body: str) -> str:
    return f"sent to {to}"


@interruptible(machine=machine, task_id=lambda: "migrate-users")
async def migrate() -> int:
    done = 0
    for _batch in range(5):
        await acheckpoint()  # a person may pause here
        await asyncio.sleep(0.01)
        done += 1
    return done


async def operator() -> None:
    handled: set[str] = set()
    paused = False
    while len(handled) < 3:
        for task in await machine.get_pending_approvals():
            if task.task_id in handled:
                continue
            handled.add(task.task_id)
            if task.interrupt_point.action and task.interrupt_point.action.name.endswith("refund"):
                await machine.edit(task.task_id, {"amount": 40}, actor="alice", message="partial refund")
            elif task.interrupt_point.kind == "review":
                await machine.approve(task.task_id, actor="alice", message="schema checked")
            else:
                await machine.reject(task.task_id, actor="alice", message="no marketing emails today")
        migration = await machine.get_task("migrate-users")
        if not paused and migration is not None and migration.state == TaskState.RUNNING:
            await machine.pause("migrate-users", "alice", "let me check the schema first")
            paused = True
        await asyncio.sleep(0.005)


async def run() -> None:
    async def email() -> str:
        try:
            return await send_email("everyone@example.com", "Big sale!")
        except ApprovalRejected as exc:
            return f"email not sent: {exc}"

    results = await asyncio.gather(refund(1042, 480), email(), migrate(), operator())
    print(results[0])
    print(results[1])
    print(f"migrated {results[2]} batches (paused once, resumed by alice)")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
