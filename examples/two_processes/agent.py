"""An agent in its own process that asks a person before a risky step, waits, and goes on.

Terminal 1 (the agent):     python examples/two_processes/agent.py
Terminal 2 (the operator):  hitl ls --state waiting
                            hitl approve cleanup-staging --comment "go ahead"
                            (or: hitl reject cleanup-staging --reason "not during the demo")

Both use the same store: ``$HITL_STORE`` if set, else the SQLite file under your user data
directory (``hitl store info`` prints where). Kill the agent while it waits (Ctrl-C, or kill -9)
and start it again: it finds its task still waiting — or already decided — and continues.
"""

from __future__ import annotations

import asyncio
import sys

from hitl_core import HITLStateMachine, TaskState
from hitl_core.cli_commands import resolve_store_url

TABLES = ["staging_orders_2023", "staging_orders_2024", "staging_tmp"]


async def run(task_id: str, url: str) -> int:
    async with HITLStateMachine(url) as machine:
        task = await machine.get_task(task_id)
        if task is not None and task.state.terminal:
            print(f"task {task_id} already finished ({task.state.value}); pass another id to run again")
            return 0
        if task is None:
            await machine.start_task(task_id, agent="cleanup-agent", step="plan")
            print(f"planned: drop {len(TABLES)} tables on staging")
        task = await machine.get_task(task_id)
        assert task is not None
        if task.state is TaskState.RUNNING:
            await machine.request_approval(
                task_id,
                f"drop {len(TABLES)} staging tables?",
                {"database": "staging", "tables": TABLES},
                severity="high",
                action="drop_tables",
                args={"tables": TABLES},
            )
        elif task.state is TaskState.AWAITING_APPROVAL:
            print("restarted: my request is still waiting")
        store_flag = "" if url == resolve_store_url(None) else f" --store {url}"
        print(
            f"waiting for a decision; from another terminal run:\n"
            f"    hitl{store_flag} approve {task_id}\n"
            f"    hitl{store_flag} reject {task_id} --reason WHY",
            flush=True,
        )
        decision = await machine.wait_for_decision(task_id)
        print(
            f"decided: {decision.type.value} by {decision.actor.id}"
            + (f" ({decision.message})" if decision.message else ""),
            flush=True,
        )
        if (await machine.get_task(task_id)).state in (TaskState.APPROVED, TaskState.REJECTED):  # type: ignore[union-attr]
            await machine.resume(task_id)
        if decision.approved:
            for table in TABLES:
                print(f"dropping {table}")
            await machine.complete(task_id, {"dropped": TABLES})
        else:
            print(f"not dropping anything: {decision.message}")
            await machine.complete(task_id, {"dropped": [], "skipped_because": decision.message})
        print("done", flush=True)
    return 0


def main() -> int:
    task_id = sys.argv[1] if len(sys.argv) > 1 else "cleanup-staging"
    try:
        return asyncio.run(run(task_id, resolve_store_url(None)))
    except KeyboardInterrupt:
        print("\nstopped; the request stays in the store — run me again to keep waiting")
        return 130


if __name__ == "__main__":
    sys.exit(main())
