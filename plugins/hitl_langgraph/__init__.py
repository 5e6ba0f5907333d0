"""hitl adapter for LangGraph (and LangChain's ``HumanInTheLoopMiddleware``).

A node calls ``interrupt(value)``; the run stops with pending ``Interrupt``\\s, each with an id.
``GraphApprovals`` turns every pending interrupt into a hitl task, waits for the decisions — made
here, in ``hitl console`` or in any other process on the same store — and resumes the graph with
``Command(resume={interrupt_id: value, ...})``: one value per pending interrupt, by id, never by
position.

Three payload shapes are recognised (``hitl_langgraph.payloads``):

* LangChain ``HumanInTheLoopMiddleware``, batched (``action_requests`` + ``review_configs``):
  one task per action request, siblings under the run's parent task; the resume value is
  ``{"decisions": [...]}`` in the middleware's own format.
* LangChain ``HumanInTheLoopMiddleware``, per call (``type == "tool_approval"``): one task, and
  the resume value is one middleware decision.
* Any other value: shown to the person as context; the answer comes back as a ``plain`` decision,
  ``{"type": "approve" | "reject" | "edit" | "respond", "actor": ..., "message": ...,
  "args": ... (edit), "response": ... (respond)}`` — or, when the interrupt declared a
  ``response_schema``, the person's response itself.

LangGraph re-runs an interrupted node from its start on resume, so code before ``interrupt()``
runs again (keep it free of side effects, or make them idempotent). The adapter is idempotent in
turn: a hitl task's id is derived from the thread id and the interrupt id, so a re-delivered
interrupt finds its task (and its decision) instead of creating another.

Importing this package does not import LangGraph: it is an entry-point plugin that every hitl
machine loads. ``GraphApprovals`` and the rest are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .adapter import GraphApprovals, PausedRun

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "langgraph"


CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject", "edit", "respond"),
    rejection_reason="yes: LangChain middleware turns it into an error ToolMessage; a plain interrupt "
    "gets it as the resume value's message",
    partial_decisions="the graph resumes once every pending interrupt of the step is decided, with one "
    "value per interrupt id",
    cross_process_resume=True,
    notes="Cross-process needs a durable checkpointer (SqliteSaver on a file) and a shared hitl store. "
    "A middleware tool's review_config narrows the decisions per tool; an interrupt with a "
    "response_schema takes only respond.",
)

_LAZY = {
    "GraphApprovals": "adapter",
    "PausedRun": "adapter",
    "GraphRun": "adapter",  # retired (docs/glossary.md): warns, answers PausedRun
}

# Loaded on first use so that loading the entry point never imports LangGraph.
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["CAPABILITIES", "FRAMEWORK", "Capabilities", "GraphApprovals", "PausedRun"]
