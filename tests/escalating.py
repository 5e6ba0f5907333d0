"""Escalate a waiting request in a test, the only way the machine allows: a deadline plugin's answer.

There is no public ``escalate`` (``test_no_caller_can_escalate_a_request_to_itself``); a test that
needs an escalated request registers a one-shot ``hitl_deadline_expired`` plugin answering an
``Escalation`` and expires the task, as the escalation policy does at a deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from hitl_core import Escalation, HITLStateMachine, InterruptPoint, TaskContext, hookimpl


class _Once:
    def __init__(self, escalation: Escalation) -> None:
        self.escalation = escalation

    @hookimpl
    def hitl_deadline_expired(self, task: TaskContext, interrupt: InterruptPoint) -> Escalation:
        return self.escalation


async def escalate(
    machine: HITLStateMachine,
    task_id: str,
    assignees: Iterable[str],
    deadline: datetime | None = None,
    message: str | None = None,
) -> TaskContext:
    """Hand ``task_id`` to ``assignees`` now, recorded as the next ``escalation:level-N``."""
    plugin = _Once(Escalation(assignees=list(assignees), deadline=deadline, message=message))
    machine.plugins.register(plugin)
    try:
        return await machine.expire(task_id, force=True)
    finally:
        machine.plugins.unregister(plugin)
