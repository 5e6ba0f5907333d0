"""An agent in its own process, against ``hitl serve`` over its Unix socket (HITL_STORE).

``web_agent.py TASK_ID REASON SEVERITY`` starts the task, asks for approval of a ``refund``
action, prints ``waiting``, blocks in ``wait_for_decision`` and prints
``decided <type> <actor id> | <actor source> | <message>``.
"""

from __future__ import annotations

import sys

from hitl_core import HITLStateMachine


def main() -> None:
    task_id, reason, severity = sys.argv[1], sys.argv[2], sys.argv[3]
    machine = HITLStateMachine()
    machine.sync.start_task(task_id, {"ticket": 42})
    machine.sync.request_approval(
        task_id, reason, severity=severity, action="refund", args={"amount": 420, "currency": "EUR"}
    )
    print("waiting", flush=True)
    decision = machine.sync.wait_for_decision(task_id, timeout=240)
    print(
        f"decided {decision.type.value} {decision.actor.id} | {decision.actor.source} | {decision.message}", flush=True
    )
    machine.sync.resume(task_id)
    machine.sync.complete(task_id, {"refunded": decision.approved})
    machine.sync.close_machine()


if __name__ == "__main__":
    main()
