"""The payments agent the OpenAI Agents SDK tests use, and a command line to drive it from other processes.

    python oa_payments.py start  <store-url> <run-id>           run until approvals are needed, then exit
    python oa_payments.py resume <store-url> <run-id>           wait for the decisions, finish the run

Each prints one JSON line with what happened, for the test to read.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, function_tool, set_tracing_disabled
from hitl_openai_agents import ApprovalRunner, OfflineToolModel, PausedRun

from hitl_core import HITLStateMachine

set_tracing_disabled(True)

#: What the transfer tool really did in this process, in order.
TRANSFERS: list[tuple[str, int]] = []


@function_tool(needs_approval=True)
def transfer(to: str, amount: int) -> str:
    """Send money to someone."""
    TRANSFERS.append((to, amount))
    return f"sent {amount} to {to}"


@function_tool
def balance() -> str:
    """Read the balance (needs no approval)."""
    return "balance 100"


def payments_agent(*turns: list[tuple[str, dict[str, Any]]]) -> tuple[Agent[None], OfflineToolModel]:
    """The payments agent on an offline model that makes the calls ``turns`` (one list per turn)."""
    model = OfflineToolModel(turns)
    return Agent(name="payments", model=model, tools=[transfer, balance]), model


#: The script the cross-process tests use: one turn, two transfers.
TWO_TRANSFERS = [("transfer", {"to": "bob", "amount": 5}), ("transfer", {"to": "eve", "amount": 900})]


async def _main(argv: list[str]) -> dict[str, Any]:
    command, store = argv[0], argv[1]
    machine = HITLStateMachine(store, load_entrypoints=False)
    try:
        if command == "start":
            agent, _ = payments_agent(TWO_TRANSFERS)
            paused = await ApprovalRunner(machine).start(agent, "pay both", run_id=argv[2])
            assert isinstance(paused, PausedRun)
            return {"pid": os.getpid(), "task_ids": paused.task_ids, "transfers": TRANSFERS}
        if command == "resume":
            agent, model = payments_agent(TWO_TRANSFERS)
            result = await ApprovalRunner(machine).resume(agent, argv[2])
            return {
                "pid": os.getpid(),
                "final_output": result.final_output,
                "transfers": TRANSFERS,
                "seen": model.seen_outputs,
            }
        raise SystemExit(f"unknown command {command!r}")
    finally:
        await machine.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_main(sys.argv[1:]))), flush=True)
