"""A smolagents payments agent whose tool calls and code wait for a person in ``hitl console``.

Offline: the agents run on ``ScriptedModel`` (shipped in ``hitl_smolagents``), a smolagents
``Model`` that answers from a script; no key, no network. A ``ToolCallingAgent`` asks for two
transfers in one step, then a ``CodeAgent`` wants to run code that makes a transfer. Run it, then
decide in the console (or with ``hitl approve|reject|edit``) on the same store::

    python examples/smolagents_payments.py               # waits for your decisions
    hitl console                                         # in another terminal: a / r / e on each

The store is ``--store URL``, else ``$HITL_STORE``, else the same SQLite file the ``hitl`` command
uses by default. ``--decide-for-me`` starts a stand-in reviewer (a thread of this process, on its
own machine on the same store) that approves what stays within the limit and rejects the rest.
smolagents cannot pause a run and resume it elsewhere, so this process waits until each decision
is made — wherever it is made.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from hitl_smolagents import ScriptedModel, SmolagentsApprovals
from smolagents import CodeAgent, ToolCallingAgent, tool
from smolagents.monitoring import LogLevel

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url

LIMIT = 1_000  # the stand-in reviewer approves transfers up to this amount, and code that sends none


@tool
def transfer(to: str, amount: int) -> str:
    """Send euros to an account.

    Args:
        to: the account (IBAN)
        amount: how many euros
    """
    return f"transferred {amount} EUR to {to}"


def stand_in_reviewer(store: str, run_id: str, stop: threading.Event) -> None:
    """Decides this run's requests as a person at the console would: small transfers yes, the rest no."""
    machine = HITLStateMachine(store)
    try:
        while not stop.is_set():
            for task in machine.sync.run(machine.get_pending_approvals()):
                if task.run_id != run_id or task.interrupt_point is None or task.interrupt_point.action is None:
                    continue
                args = task.interrupt_point.action.args
                if "code" in args and "transfer(" not in args["code"]:
                    machine.sync.run(machine.approve(task.task_id, "stand-in-reviewer", comment="no transfer"))
                elif args.get("amount", LIMIT + 1) <= LIMIT:
                    machine.sync.run(machine.approve(task.task_id, "stand-in-reviewer", comment="within the limit"))
                else:
                    why = "code that moves money needs a ticket" if "code" in args else f"over the {LIMIT} EUR limit"
                    machine.sync.run(machine.reject(task.task_id, "stand-in-reviewer", why))
            time.sleep(0.1)
    finally:
        machine.sync.close_machine()


def run(store: str, decide_for_me: bool) -> list[str]:
    machine = HITLStateMachine(store)
    run_id = f"smol-{uuid.uuid4().hex[:6]}"
    approvals = SmolagentsApprovals(
        machine,
        run_id=run_id,
        severity=lambda tool, args: "critical" if "code" in args or args.get("amount", 0) > LIMIT else "medium",
    )
    stop = threading.Event()
    reviewer = threading.Thread(target=stand_in_reviewer, args=(store, run_id, stop), daemon=True)
    try:
        print(f"store: {store}")
        print(f"run {run_id}: decide each request in `hitl console --store {store}`")
        if decide_for_me:
            reviewer.start()
        tool_model = ScriptedModel(
            [
                [
                    ("transfer", {"to": "DE89 3704 0044 0532 0130 00", "amount": 250}),
                    ("transfer", {"to": "GB29 NWBK 6016 1331 9268 19", "amount": 48_000}),
                ]
            ]
        )
        payer = approvals.guard(
            ToolCallingAgent(tools=[transfer], model=tool_model, name="payer", verbosity_level=LogLevel.OFF)
        )
        payer.run("Pay this week's invoices.")
        coder_model = ScriptedModel(['print(transfer(to="FR14 2004 1010 0505 0001 3M02 606", amount=75))'], code=True)
        coder = approvals.guard(
            CodeAgent(tools=[transfer], model=coder_model, name="coder", verbosity_level=LogLevel.OFF)
        )
        coder.run("Refund the customer.")
        for task in sorted(machine.sync.run(machine.get_all_tasks()), key=lambda t: t.created_at):
            if task.run_id == run_id:
                print(f"  {task.task_id}: {task.state} — {task.result}")
        seen = [tool_model.last_seen_text(), coder_model.last_seen_text()]
        for line in "\n".join(seen).splitlines():
            if "transferred" in line or "rejected by" in line:
                print(f"the model read: {line.strip()}")
        return seen
    finally:
        stop.set()
        if reviewer.is_alive():
            reviewer.join(timeout=10)
        machine.sync.close_machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument(
        "--decide-for-me",
        action="store_true",
        help="a stand-in reviewer decides (approve small, reject large and code that moves money)",
    )
    args = parser.parse_args(argv)
    run(resolve_store_url(args.store), args.decide_for_me)


if __name__ == "__main__":
    main()
