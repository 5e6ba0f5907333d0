"""An agent in its own process, against a ``hitl serve`` named by HITL_STORE (and HITL_TOKEN).

``proc_agent.py TASK_ID`` starts the task, asks for approval, prints ``waiting``, blocks in
``wait_for_decision`` and prints ``decided <type> <actor id> | <actor source>``. The plain
``HITLStateMachine()`` is used on purpose: server mode comes from the environment alone.
"""

from __future__ import annotations

import sys

from hitl_core import HITLStateMachine


def main() -> None:
    task_id = sys.argv[1]
    machine = HITLStateMachine()
    print(f"machine {type(machine).__name__}", flush=True)
    machine.sync.start_task(task_id, {"ticket": 42})
    machine.sync.request_approval(task_id, "refund 420 EUR", args={"amount": 420})
    print("waiting", flush=True)
    decision = machine.sync.wait_for_decision(task_id, timeout=240)
    print(f"decided {decision.type.value} {decision.actor.id} | {decision.actor.source}", flush=True)
    machine.sync.resume(task_id)
    machine.sync.complete(task_id, {"refunded": decision.approved})
    print("done", flush=True)
    machine.sync.close_machine()


if __name__ == "__main__":
    main()
