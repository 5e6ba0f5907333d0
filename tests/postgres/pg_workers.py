"""The OS processes of the multi-process PostgreSQL test: agents and console-like deciders.

    python pg_workers.py agent   URL NAME OUTDIR TASK_ID...
    python pg_workers.py decider URL NAME OUTDIR TOTAL_TASKS

An agent runs each of its tasks through start → request_approval → wait_for_decision → resume →
complete, and writes one "acknowledged" line per transition the machine returned from
(``task_id version seq``): those must all be in the log afterwards, whatever happened to the
server. A decider follows the log from the start, tries to approve every task that starts
waiting (racing the other decider), and writes every sequence number it was shown, and which
approvals it won; it stops once it has seen every task complete.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from hitl_core import AlreadyDecidedError, ConflictError, HITLStateMachine, InvalidTransitionError, TaskState


async def agent(url: str, name: str, outdir: Path, task_ids: list[str]) -> None:
    acks = (outdir / f"acks-{name}.txt").open("w", buffering=1)
    gate = asyncio.Semaphore(50)

    def ack(ctx: object) -> None:
        acks.write(f"{ctx.task_id} {ctx.version} {ctx.history[-1]['seq']}\n")  # type: ignore[attr-defined]

    async with HITLStateMachine(url, load_entrypoints=False, agent=name) as machine:

        async def run(task_id: str) -> None:
            async with gate:
                ack(await machine.start_task(task_id))
                ack(await machine.request_approval(task_id, f"{name} wants to go on", {"task": task_id}))
                decision = await machine.wait_for_decision(task_id, timeout=180)
                assert decision.approved, decision
                ack(await machine.resume(task_id))
                ack(await machine.complete(task_id, {"by": name}))

        await asyncio.gather(*(run(t) for t in task_ids))
    acks.close()


async def decider(url: str, name: str, outdir: Path, total: int) -> None:
    seen = (outdir / f"seen-{name}.txt").open("w", buffering=1)
    won = (outdir / f"won-{name}.txt").open("w", buffering=1)
    completed = 0
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        async for event in machine.store.follow(0):
            seen.write(f"{event.seq}\n")
            if event.to_state is TaskState.AWAITING_APPROVAL:
                try:
                    await machine.approve(event.task_id, name, source="console")
                    won.write(f"{event.task_id}\n")
                except (AlreadyDecidedError, ConflictError, InvalidTransitionError):
                    pass  # the other decider got there first
            elif event.to_state is TaskState.COMPLETED:
                completed += 1
                if completed == total:
                    break
    seen.close()
    won.close()


def main(argv: list[str]) -> None:
    # The store's reconnect warnings go to stdout, where the test checks the restart was noticed.
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(name)s: %(message)s")
    role, url, name, outdir = argv[1], argv[2], argv[3], Path(argv[4])
    if role == "agent":
        asyncio.run(agent(url, name, outdir, argv[5:]))
    else:
        asyncio.run(decider(url, name, outdir, int(argv[5])))


if __name__ == "__main__":
    main(sys.argv)
