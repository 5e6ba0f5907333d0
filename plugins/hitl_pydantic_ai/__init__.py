"""hitl adapter for Pydantic AI (``pydantic-ai-slim``).

Tools declared with ``requires_approval=True``, or raising ``ApprovalRequired``, end a run with
``DeferredToolRequests``; tools raising ``CallDeferred`` (external work, or ``kind="question"``)
do too. ``AgentApprovals`` turns every pending call into a hitl task (tool name, args, call id,
metadata), waits until every call of the batch is decided — Pydantic AI takes the results of a
batch together — and continues the run with ``DeferredToolResults`` and the message history:

* approve → ``ToolApproved()``; edit → ``ToolApproved(override_args=edited_args)``;
* reject → ``ToolDenied(message)``: the model receives the reason as the tool's result;
* respond (questions and external calls) → the person's answer is the tool's return value.

Two styles: ``run`` ends the agent's run at each pause and continues it in a new run (the
pause — message history and pending calls, as JSON — is kept in the tasks' metadata, so another
process can continue it with ``resume``); ``capability()`` is a ``HandleDeferredToolCalls``
capability that waits for the decisions inside the run, without ending it.

Importing this package does not import Pydantic AI: it is an entry-point plugin that every hitl
machine loads. ``AgentApprovals`` is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .adapter import AgentApprovals, PausedRun

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "pydantic-ai"


CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject", "edit", "respond"),
    rejection_reason="yes: ToolDenied(message) is the tool call's result the model reads",
    partial_decisions="the run continues once every pending call of the batch is decided",
    cross_process_resume=True,
    notes="Approval calls take approve / edit (ToolApproved(override_args)) / reject; question and "
    "external calls (CallDeferred) take respond (the tool's return value) / reject.",
)

_LAZY = {
    "AgentApprovals": "adapter",
    "PausedRun": "adapter",
    "AgentRunPaused": "adapter",  # retired (docs/glossary.md): warns, answers PausedRun
}

# Loaded on first use so that loading the entry point never imports Pydantic AI.
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["CAPABILITIES", "FRAMEWORK", "AgentApprovals", "Capabilities", "PausedRun"]
