"""A Google ADK accounts-payable agent whose risky tool calls wait for a person in ``hitl console``.

Offline: the agent's model is ``hitl_adk.ScriptedLlm`` (an ADK ``BaseLlm`` that plays scripted
tool calls), like a model that read this week's invoices. It pays two invoices — 40 EUR (under
the limit: runs at once) and 4,800 EUR (``require_confirmation`` predicate: waits) — asks to
close a vendor's account (``require_confirmation=True``: waits) and to refund a customer
(the tool calls ``tool_context.request_confirmation`` itself: waits). Then it reports what
happened, from the tool results ADK gave it back::

    python examples/adk_payments.py                  # waits for your decisions
    hitl console                                     # in another terminal: a / r / e

ADK keeps the paused run in a SQLite file (``DatabaseSessionService``, ``--sessions PATH``);
``--start`` pauses and exits, ``--resume SESSION`` continues it — in another process, later.
The hitl store is ``--store URL``, else ``$HITL_STORE``, else the ``hitl`` command's SQLite file.
``--decide-for-me`` starts a stand-in reviewer in this process (it edits the big payment down to
the limit, rejects the account closure with a reason, approves the refund).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # offline: no telemetry export

from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.runners import Runner
from google.adk.sessions import DatabaseSessionService
from google.adk.tools import FunctionTool, ToolContext
from hitl_adk import AdkApprovals, ConfirmationPlugin, PausedRun, ScriptedLlm

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url

PAYMENT_LIMIT = 1000  # EUR the agent may pay without a person
USER = "accounts-payable"

SCRIPT = [
    [
        {"name": "pay_invoice", "args": {"invoice": "INV-17", "vendor": "Paper Co", "amount": 40}, "id": "pay-17"},
        {"name": "pay_invoice", "args": {"invoice": "INV-18", "vendor": "Acme GmbH", "amount": 4800}, "id": "pay-18"},
        {"name": "close_vendor", "args": {"vendor": "Old Printers Ltd"}, "id": "close-1"},
        {"name": "refund_customer", "args": {"customer": "c-77", "amount": 120}, "id": "refund-1"},
    ]
]


def pay_invoice(invoice: str, vendor: str, amount: int) -> str:
    """Pay ``amount`` EUR to ``vendor`` for ``invoice``."""
    return f"paid {amount} EUR to {vendor} for {invoice}"


def close_vendor(vendor: str) -> str:
    """Close the vendor's account: no more payments to it."""
    return f"closed the account of {vendor}"


def refund_customer(customer: str, amount: int, tool_context: ToolContext) -> str:
    """Refund a customer; every refund is confirmed by a person first."""
    confirmation = tool_context.tool_confirmation
    if confirmation is None:
        tool_context.request_confirmation(hint=f"Refund {amount} EUR to customer {customer}?")
        return "waiting for confirmation"
    return f"refunded {amount} EUR to {customer}" if confirmation.confirmed else "refund not made"


def payables_runner(sessions: Path) -> Runner:
    agent = LlmAgent(
        name="payables_agent",
        model=ScriptedLlm(turns=SCRIPT),
        instruction="Pay this week's invoices and tidy up the vendor list.",
        tools=[
            FunctionTool(pay_invoice, require_confirmation=lambda invoice, vendor, amount: amount > PAYMENT_LIMIT),
            FunctionTool(close_vendor, require_confirmation=True),
            refund_customer,
        ],
    )
    app = App(name="payables", root_agent=agent, plugins=[ConfirmationPlugin()])
    return Runner(app=app, session_service=DatabaseSessionService(f"sqlite+aiosqlite:///{sessions}"))


async def stand_in_reviewer(machine: HITLStateMachine, session_id: str, expected: int) -> None:
    """Decides this run's calls as a person at the console would."""
    decided: set[str] = set()
    while len(decided) < expected:
        for task in await machine.get_pending_approvals():
            if task.run_id != session_id or task.task_id in decided or task.interrupt_point is None:
                continue
            action = task.interrupt_point.action
            name = action.name if action else ""
            if name == "pay_invoice" and action is not None:
                await machine.edit(
                    task.task_id,
                    {**action.args, "amount": PAYMENT_LIMIT},
                    "stand-in-reviewer",
                    message="pay the limit now, the rest after the delivery is checked",
                )
            elif name == "close_vendor":
                await machine.reject(task.task_id, "stand-in-reviewer", "they still owe us a credit note")
            else:
                await machine.approve(task.task_id, "stand-in-reviewer")
            decided.add(task.task_id)
        await asyncio.sleep(0.05)


async def run(store: str, sessions: Path, decide_for_me: bool, start: bool, resume: str | None) -> str:
    machine = HITLStateMachine(store)
    session_id = resume or f"payables-{uuid.uuid4().hex[:6]}"
    try:
        print(f"store: {store}")
        print(f"ADK sessions: {sessions}")
        print(f"run {session_id}: decide its calls in `hitl console --store {store}`")
        adapter = AdkApprovals(
            machine,
            payables_runner(sessions),
            severity=lambda tool, args: "high" if tool == "close_vendor" else "medium",
        )
        if start:
            result = await adapter.start(USER, "Pay this week's invoices.", session_id=session_id)
        else:
            reviewer = asyncio.create_task(stand_in_reviewer(machine, session_id, 3)) if decide_for_me else None
            if resume:
                result = await adapter.resume(USER, session_id)
            else:
                result = await adapter.run(USER, "Pay this week's invoices.", session_id=session_id)
            if reviewer is not None:
                await reviewer
        if isinstance(result, PausedRun):
            print(f"paused: {len(result.task_ids)} calls wait; continue with --resume {session_id}")
            return ""
        print(result.text)
        return result.text
    finally:
        await machine.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument(
        "--sessions",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hitl-adk-payables.db",
        help="ADK's SQLite session file (default: %(default)s)",
    )
    parser.add_argument("--decide-for-me", action="store_true", help="a stand-in reviewer decides instead of you")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--start", action="store_true", help="run to the first pause, record it and exit")
    mode.add_argument("--resume", metavar="SESSION", help="continue a paused run (e.g. one --start left)")
    args = parser.parse_args(argv)
    asyncio.run(run(resolve_store_url(args.store), args.sessions, args.decide_for_me, args.start, args.resume))


if __name__ == "__main__":
    main()
