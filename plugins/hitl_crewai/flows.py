"""CrewAI Flows with ``@human_feedback``: pause durably, decide in hitl, resume anywhere.

``FlowFeedbackViaHITL`` is a ``HumanFeedbackProvider``. Asked for feedback, it records a hitl
question (the method's output as context, the flow id as ``run_id``) and raises CrewAI's
``HumanFeedbackPending``: CrewAI then saves the flow's state and the pending request in its flow
persistence (``SQLiteFlowPersistence``) and ``kickoff()`` returns the pending object instead of
blocking. Nothing of the flow stays in memory.

``resume_flow`` — in the same process or any other with the flow's class, the hitl store and the
flow persistence — waits for the decision, turns it into CrewAI's feedback text (approve with no
text: ""; respond: the text; reject: its reason) and continues with
``FlowClass.from_pending(flow_id, persistence).resume(feedback)``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from crewai.flow.async_feedback.types import HumanFeedbackPending, PendingFeedbackContext
from crewai.flow.persistence.base import FlowPersistence

from hitl_core import HITLError, HITLStateMachine, InterruptKind, Severity, TaskContext, TaskNotFoundError, TaskState
from hitl_core.adapters import Request

from . import FRAMEWORK, REVIEW_DECISIONS
from .human_input import feedback_of
from .tools import CrewAIApprovals

#: Key in a task's metadata under which the adapter keeps what a resuming process needs.
META_KEY = "crewai_flow"


def _json_safe(value: Any) -> Any:
    """The method's output as the person will see it (CrewAI's own JSON-safe conversion)."""
    return json.loads(json.dumps(PendingFeedbackContext._make_json_safe(value), default=str))


class FlowFeedbackViaHITL:
    """Pass as ``@human_feedback(..., provider=FlowFeedbackViaHITL(machine))``.

    ``severity`` and ``timeout`` (seconds; then the default decision applies when the flow is
    resumed) go on every question.
    """

    def __init__(
        self, machine: HITLStateMachine, *, severity: Severity | str = Severity.MEDIUM, timeout: float | None = None
    ) -> None:
        self.machine = machine
        self.severity = severity
        self.timeout = timeout

    def request_feedback(self, context: PendingFeedbackContext, flow: Any) -> str:
        """Record the question, then pause the flow (raises ``HumanFeedbackPending``)."""
        flow_class = f"{type(flow).__module__}.{type(flow).__qualname__}"
        task_id = f"{context.flow_id}:{context.method_name}-{uuid.uuid4().hex[:8]}"
        meta = {META_KEY: {"flow_id": context.flow_id, "flow_class": flow_class, "method_name": context.method_name}}
        request = Request(
            reason=context.message or f"feedback on {context.method_name}",
            context={
                "flow": flow_class,
                "method": context.method_name,
                "output": _json_safe(context.method_output),
                "emit": context.emit,
                "default_outcome": context.default_outcome,
            },
            allowed_decisions=REVIEW_DECISIONS,
            kind=InterruptKind.QUESTION,
            response_schema={"type": "string"},
            step=context.method_name,
            severity=self.severity,
            options=list(context.emit) if context.emit else None,
            agent=type(flow).__name__,
        )
        lifecycle = CrewAIApprovals(self.machine, timeout=self.timeout)
        lifecycle.run_sync(lifecycle.ask(task_id, context.flow_id, request, meta, parent=False))
        raise HumanFeedbackPending(context=context, callback_info={"hitl_task_id": task_id})


def pending_flow_feedback(machine: HITLStateMachine, flow_id: str | None = None) -> list[TaskContext]:
    """The flow questions not yet carried back to their flow (waiting or decided), oldest first."""
    found: list[TaskContext] = []
    for state in (TaskState.AWAITING_APPROVAL, TaskState.APPROVED, TaskState.REJECTED):
        found += [
            t
            for t in machine.sync.get_tasks_by_state(state)
            if t.framework == FRAMEWORK
            and META_KEY in t.metadata
            and (flow_id is None or t.metadata[META_KEY]["flow_id"] == flow_id)
        ]
    return sorted(found, key=lambda t: t.created_at)


def resume_flow(
    flow_cls: type[Any],
    machine: HITLStateMachine,
    flow_id: str,
    persistence: FlowPersistence | None = None,
    **flow_kwargs: Any,
) -> Any:
    """Wait for the person, then continue the paused flow ``flow_id`` with their feedback.

    Returns what ``Flow.resume`` returns: the flow's result, or another ``HumanFeedbackPending``
    when it stops at a later ``@human_feedback``. Raises ``TaskNotFoundError`` when no paused
    question exists for ``flow_id`` and ``HITLError`` when CrewAI's persistence has no pending
    state for it (another process resumed it already, or a different database was given); in
    both cases the hitl task is left as it was.
    """
    tasks = pending_flow_feedback(machine, flow_id)
    if not tasks:
        raise TaskNotFoundError(f"{flow_id} (no paused {FRAMEWORK} flow with this id)")
    task = tasks[-1]
    lifecycle = CrewAIApprovals(machine)
    [decision] = lifecycle.run_sync(lifecycle.decisions([task.task_id]))
    feedback = feedback_of(decision)
    context = task.interrupt_point.context if task.interrupt_point is not None else {}
    if (
        decision.approved
        and not feedback
        and decision.option in (context.get("emit") or ())
        and decision.option != context.get("default_outcome")
    ):
        # The person picked an outcome. CrewAI takes no outcome directly, only feedback text, which
        # its flow LLM then classifies; the option's own name is the least ambiguous text to give.
        feedback = decision.option
    try:
        flow = flow_cls.from_pending(flow_id, persistence, **flow_kwargs)
    except ValueError as exc:
        raise HITLError(
            f"flow {flow_id!r}: CrewAI's flow persistence has nothing pending to resume "
            f"({exc}); is it the same database the flow was started with?"
        ) from exc
    result = flow.resume(feedback)
    # Claimed only now: a resume that fails (no usable flow LLM for an outcome) leaves the decision
    # where it was, to be resumed again once the flow can take it.
    if lifecycle.run_sync(lifecycle.claim([task.task_id])) is None:
        raise HITLError(f"flow {flow_id!r}: task {task.task_id!r} was carried back by another process meanwhile")
    summary = result if isinstance(result, (str, int, float, bool, type(None))) else str(result)
    if isinstance(result, HumanFeedbackPending):
        summary = {"paused_again": result.context.method_name}
    outcome = {"decision": decision.type.value, "feedback": feedback, "flow_result": summary}
    lifecycle.run_sync(lifecycle.delivered([task.task_id], outcome))
    return result
