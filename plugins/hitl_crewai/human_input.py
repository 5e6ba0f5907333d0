"""``HumanInputViaHITL``: ``Task(human_input=True)`` asks through hitl instead of ``input()``.

CrewAI's default provider prints the agent's answer and blocks on ``input()`` in the agent's own
terminal, round after round, until the person hits Enter on an empty line. This provider keeps
that loop and its meaning but asks a hitl question each round (kind ``question``): the answer is
shown as the question's context, and

* approve (no text) accepts the answer — the empty line;
* respond with text makes that text the feedback, and the agent tries again;
* reject makes its reason the feedback (without a reason: "rejected by <who>"), and the agent
  tries again.

CrewAI selects the provider through a context variable (``crewai.core.providers.human_input``),
so ``install()`` applies to the current thread's context and what it starts.
"""

from __future__ import annotations

import asyncio
import uuid
from contextvars import Token

from crewai.agents.parser import AgentFinish
from crewai.core.providers.human_input import (
    AsyncExecutorContext,
    ExecutorContext,
    HumanInputProvider,
    SyncHumanInputProvider,
    reset_provider,
    set_provider,
)

from hitl_core import Decision, DecisionType, HITLStateMachine, InterruptKind, Severity
from hitl_core.adapters import Request

from . import REVIEW_DECISIONS
from .tools import CrewAIApprovals

#: The feedback a person's decision stands for: "" accepts the answer.
ACCEPT = ""


def feedback_of(decision: Decision) -> str:
    """The text CrewAI's feedback loop gets for ``decision`` (empty accepts)."""
    if decision.type is DecisionType.RESPOND:
        return str(decision.response or "")
    if decision.approved:
        return ACCEPT
    return decision.message or f"The answer was rejected by {decision.actor.id}; produce a better one."


class HumanInputViaHITL(SyncHumanInputProvider):
    """A CrewAI ``HumanInputProvider`` whose every round is a hitl question.

    ``run_id`` groups the questions (default: the crew's id); ``timeout`` (seconds) lets the
    question's default — reject, i.e. "try again" — apply; ``default_decision="approve"`` makes
    an unanswered question accept the answer instead, where the machine allows an approving
    default at all (hitl.toml: ``[deadlines] allow_default_approve = true``; refused otherwise).
    """

    def __init__(
        self,
        machine: HITLStateMachine,
        *,
        run_id: str | None = None,
        timeout: float | None = None,
        default_decision: str = "reject",
        severity: Severity | str = Severity.MEDIUM,
    ) -> None:
        self.machine = machine
        self.run_id = run_id
        self.timeout = timeout
        self.default_decision = default_decision
        self.severity = severity
        self._token: Token[HumanInputProvider | None] | None = None

    def install(self) -> HumanInputViaHITL:
        self._token = set_provider(self)
        return self

    def uninstall(self) -> None:
        if self._token is not None:
            reset_provider(self._token)
            self._token = None

    def __enter__(self) -> HumanInputViaHITL:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- one round --------------------------------------------------------------------------------

    def ask(self, answer: AgentFinish, context: ExecutorContext, round_number: int) -> str:
        """Ask a person about ``answer``; block until decided; return the feedback ("" accepts)."""
        task = context.task
        agent = getattr(context.agent, "role", None) or "agent"
        crew_id = getattr(context.crew, "id", None)
        run_id = self.run_id or (str(crew_id) if crew_id is not None else uuid.uuid4().hex[:12])
        task_id = f"{run_id}:review-{uuid.uuid4().hex[:8]}"
        description = getattr(task, "description", "") or ""
        request = Request(
            reason=f"{agent} asks for feedback on its answer",
            context={
                "task": description,
                "expected_output": getattr(task, "expected_output", None),
                "answer": self._get_output_string(answer),
                "round": round_number,
            },
            allowed_decisions=REVIEW_DECISIONS,
            kind=InterruptKind.QUESTION,
            response_schema={"type": "string"},
            step=f"review round {round_number}",
            severity=self.severity,
            default_decision=self.default_decision,
            agent=agent,
        )
        lifecycle = CrewAIApprovals(self.machine, timeout=self.timeout)
        decision = lifecycle.run_sync(lifecycle.ask_and_claim(task_id, run_id, request))
        feedback = feedback_of(decision)
        lifecycle.run_sync(lifecycle.delivered([task_id], {"decision": decision.type.value, "feedback": feedback}))
        return feedback

    # -- CrewAI's provider protocol ------------------------------------------------------------

    def handle_feedback(self, formatted_answer: AgentFinish, context: ExecutorContext) -> AgentFinish:
        feedback = self.ask(formatted_answer, context, 1)
        if context._is_training_mode():
            return self._handle_training_feedback(formatted_answer, feedback, context)
        answer = formatted_answer
        round_number = 1
        while context.ask_for_human_input:
            if not feedback.strip():
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = context._invoke_loop()
                round_number += 1
                feedback = self.ask(answer, context, round_number)
        return answer

    async def handle_feedback_async(self, formatted_answer: AgentFinish, context: AsyncExecutorContext) -> AgentFinish:
        # The facade blocks; keep the crew's event loop free while the person decides.
        feedback = await asyncio.to_thread(self.ask, formatted_answer, context, 1)
        if context._is_training_mode():
            return await self._handle_training_feedback_async(formatted_answer, feedback, context)
        answer = formatted_answer
        round_number = 1
        while context.ask_for_human_input:
            if not feedback.strip():
                context.ask_for_human_input = False
            else:
                context.messages.append(context._format_feedback_message(feedback))
                answer = await context._ainvoke_loop()
                round_number += 1
                feedback = await asyncio.to_thread(self.ask, answer, context, round_number)
        return answer


__all__ = ["HumanInputViaHITL", "feedback_of"]
