"""hitl adapter for the OpenAI Agents SDK (``openai-agents``).

A tool declared with ``needs_approval=True`` (or a predicate) makes ``Runner.run`` stop with
``result.interruptions``. ``ApprovalRunner`` turns each pending ``ToolApprovalItem`` into a hitl
task (tool name, arguments, call id, agent name), waits for the decisions — made here, in the
console, or in any other process on the same store — applies them with ``state.approve(item)`` /
``state.reject(item, rejection_message=…)`` and runs again until nothing is pending.

Importing this package does not import the SDK (it is an entry-point plugin, loaded by every
machine); ``ApprovalRunner`` and the offline model are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .adapter import ApprovalRunner, PausedRun
    from .offline import OfflineToolModel

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "openai-agents"


CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject"),
    rejection_reason="yes: the reason is the tool call's output (state.reject(rejection_message=…))",
    partial_decisions="the run resumes once every pending call of the turn is decided; decided calls wait",
    cross_process_resume=True,
    notes="The SDK has no way to run a tool with edited arguments or to return a person's answer "
    "as the tool's result, so edit and respond are not offered.",
)

_LAZY = {
    "ApprovalRunner": "adapter",
    "PausedRun": "adapter",
    "PendingRun": "adapter",  # retired (docs/glossary.md): warns, answers PausedRun
    "OfflineToolModel": "offline",
}

# Loaded on first use so that loading the entry point never imports the SDK.
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["CAPABILITIES", "FRAMEWORK", "ApprovalRunner", "Capabilities", "OfflineToolModel", "PausedRun"]
