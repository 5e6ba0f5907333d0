"""A payments agent (OpenAI Agents SDK) whose transfers wait for a person in ``hitl console``.

Offline: the agent runs on ``OfflineToolModel``, which asks for two transfers and then reports what
it was told; no key, no network. Run it, then decide in the console on the same store::

    python examples/openai_agents_payments.py            # waits for your decisions
    hitl console                                          # in another terminal: a / r on each transfer

The store is ``--store URL``, else ``$HITL_STORE``, else the same SQLite file the ``hitl`` command
uses by default, so the console sees the tasks without any flag. ``--decide-for-me`` starts a
stand-in reviewer (in this process, through the same store) that approves the small transfer and
rejects the large one, for an unattended run. The SDK cannot edit a transfer's arguments or answer
for the tool, so the console offers only approve and reject on these tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")  # offline: never export traces

from agents import Agent, function_tool, set_tracing_disabled
from hitl_openai_agents import ApprovalRunner, OfflineToolModel

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url

set_tracing_disabled(True)

LIMIT = 1_000  # the stand-in reviewer approves transfers up to this amount


@function_tool(needs_approval=True)
def transfer(to: str, amount: int, memo: str) -> str:
    """Send ``amount`` euros to the account ``to``."""
    return f"transferred {amount} EUR to {to} ({memo})"


async def stand_in_reviewer(machine: HITLStateMachine, run_id: str, expected: int) -> None:
    """Decides this run's transfers as a person at the console would: small ones yes, large ones no."""
    decided: set[str] = set()
    while len(decided) < expected:
        for task in await machine.get_pending_approvals():
            if task.run_id != run_id or task.task_id in decided or task.interrupt_point is None:
                continue
            args = task.interrupt_point.action.args if task.interrupt_point.action else {}
            if args.get("amount", 0) <= LIMIT:
                await machine.approve(task.task_id, "stand-in-reviewer", message="within the limit")
            else:
                await machine.reject(
                    task.task_id,
                    "stand-in-reviewer",
                    f"{args.get('amount')} EUR is over the {LIMIT} EUR limit without a ticket",
                )
            decided.add(task.task_id)
        await asyncio.sleep(0.1)


async def run(store: str, decide_for_me: bool) -> str:
    model = OfflineToolModel(
        [
            [
                ("transfer", {"to": "DE89 3704 0044 0532 0130 00", "amount": 250, "memo": "invoice 2024-117"}),
                ("transfer", {"to": "GB29 NWBK 6016 1331 9268 19", "amount": 48_000, "memo": "urgent, CEO request"}),
            ]
        ]
    )
    agent = Agent(name="payments-agent", instructions="Pay the invoices you are given.", model=model, tools=[transfer])
    machine = HITLStateMachine(store)
    run_id = f"payments-{uuid.uuid4().hex[:6]}"
    try:
        print(f"store: {store}")
        print(f"run {run_id}: the agent asks for two transfers; decide them in `hitl console --store {store}`")
        runner = ApprovalRunner(
            machine, severity=lambda tool, args: "critical" if args.get("amount", 0) > LIMIT else "medium"
        )
        reviewer = asyncio.create_task(stand_in_reviewer(machine, run_id, 2)) if decide_for_me else None
        result = await runner.run(agent, "Pay this week's invoices.", run_id=run_id)
        if reviewer is not None:
            await reviewer
        for task in await machine.get_all_tasks():
            if task.run_id == run_id:
                print(f"  {task.task_id}: {task.state} — {task.result}")
        print(f"the agent's final answer: {result.final_output}")
        return str(result.final_output)
    finally:
        await machine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument(
        "--decide-for-me",
        action="store_true",
        help="a stand-in reviewer decides (approve small, reject large) instead of you",
    )
    args = parser.parse_args(argv)
    asyncio.run(run(resolve_store_url(args.store), args.decide_for_me))


if __name__ == "__main__":
    main()
