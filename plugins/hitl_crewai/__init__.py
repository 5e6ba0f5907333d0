"""hitl adapter for CrewAI: three places where a CrewAI run waits for a person.

* ``ToolApprovals`` — CrewAI's before-tool-call hook blocks (through the machine's synchronous
  facade) until a decision: approve lets the call through, edit changes ``tool_input`` in place
  first, reject blocks it, respond blocks it and hands the person's answer to the agent as the
  tool's result. CrewAI replaces a blocked call's result with a fixed "blocked by hook" text and
  drops any reason; the adapter's after-tool-call hook puts the reason back (CrewAI runs the
  after hooks for blocked calls too and lets them replace the result). CrewAI runs the tool when
  a hook raises, so the hook fails closed: if hitl cannot ask, the call is blocked and the model
  is told why.
* ``HumanInputViaHITL`` — replaces the blocking ``input()`` of ``Task(human_input=True)``: the
  answer becomes a hitl question; the person's text is the feedback, approve with no text
  accepts the answer.
* ``FlowFeedbackViaHITL`` — a ``@human_feedback`` provider that raises CrewAI's
  ``HumanFeedbackPending``, so the flow persists (SQLite flow persistence) and stops; the request
  is a hitl task, and ``resume_flow`` (in any process) waits for the decision and continues the
  flow with ``Flow.from_pending(...).resume(feedback)``.

Importing this package does not import CrewAI (whose import alone takes seconds): it is an
entry-point plugin that every hitl machine loads. The classes are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .flows import FlowFeedbackViaHITL, pending_flow_feedback, resume_flow
    from .human_input import HumanInputViaHITL
    from .offline import OfflineToolLLM
    from .tools import ToolApprovals

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "crewai"


CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject", "edit", "respond"),
    rejection_reason="yes: CrewAI drops it (a blocked call reads 'Tool execution blocked by hook'); the "
    "adapter's after-tool-call hook replaces that text with the reason",
    partial_decisions="each call blocks its own thread: CrewAI runs one turn's native tool calls in "
    "parallel threads, so a decided call runs while its siblings still wait",
    cross_process_resume=True,
    notes="Tool approvals and Task(human_input=True) block the crew's process until decided (from any "
    "process on the same store); only Flows with @human_feedback pause durably and resume in "
    "another process (Flow.from_pending). In a Flow with emit=[...], approve alone takes the "
    "default outcome; another option or any text is classified by the flow's LLM, as CrewAI "
    "does (it takes no outcome directly).",
)

#: The decisions each kind of request allows (tool calls: all four; a review: no edited args).
TOOL_DECISIONS: tuple[str, ...] = ("approve", "reject", "edit", "respond")
REVIEW_DECISIONS: tuple[str, ...] = ("approve", "reject", "respond")

_LAZY = {
    "ToolApprovals": "tools",
    "HumanInputViaHITL": "human_input",
    "FlowFeedbackViaHITL": "flows",
    "resume_flow": "flows",
    "pending_flow_feedback": "flows",
    "OfflineToolLLM": "offline",
}

# Loaded on first use so that loading the entry point never imports CrewAI.
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CAPABILITIES",
    "FRAMEWORK",
    "REVIEW_DECISIONS",
    "TOOL_DECISIONS",
    "Capabilities",
    "FlowFeedbackViaHITL",
    "HumanInputViaHITL",
    "OfflineToolLLM",
    "ToolApprovals",
    "pending_flow_feedback",
    "resume_flow",
]
