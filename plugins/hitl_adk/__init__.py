"""hitl adapter for Google's Agent Development Kit (``google-adk``).

A tool declared with ``FunctionTool(func, require_confirmation=True)`` (or a predicate), or one
that calls ``tool_context.request_confirmation(...)``, pauses the run: ADK answers the call with a
placeholder and emits an ``adk_request_confirmation`` function call that waits for the user's
``ToolConfirmation``. ``AdkApprovals`` turns each such request into a hitl task (tool name, args,
call id), waits for the decisions — made here, in the console, or in any process on the same
store — and sends them back as the ``adk_request_confirmation`` function responses:

* approve → ``ToolConfirmation(confirmed=True)``: the tool runs;
* edit → ``confirmed=True`` and the edited args, which ``ConfirmationPlugin`` puts in place of the
  model's args before the tool runs;
* reject → ``confirmed=False``: ``ConfirmationPlugin`` answers the call with the person's reason
  (``{"error": "The transfer call was rejected by alice: …"}``), the tool does not run.

The paused run lives in ADK's own session service; with a persistent one
(``DatabaseSessionService`` on SQLite, say) another process that has the same agent and store
continues it with ``resume``.

Importing this package does not import ADK (it is an entry-point plugin, loaded by every
machine); the adapter, the plugin and the offline model are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .adapter import AdkApprovals, AdkRunResult, ConfirmationPlugin, PausedRun, PendingConfirmation
    from .offline import ScriptedLlm

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "adk"


CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject", "edit"),
    rejection_reason="yes: ConfirmationPlugin answers the refused call with the reason, the tool's result the model reads",
    partial_decisions="the run continues once every pending confirmation of the pause is decided",
    cross_process_resume=True,
    notes="Edits need ConfirmationPlugin on the Runner (AdkApprovals refuses a Runner without it). "
    "A person's free-form answer (respond) is not offered: ADK's ToolConfirmation.payload is the "
    "tool's own contract, and hitl uses it to carry the decision to the plugin.",
)

_LAZY = {
    "AdkApprovals": "adapter",
    "PausedRun": "adapter",
    "AdkRunPaused": "adapter",  # retired (docs/glossary.md): warns, answers PausedRun
    "AdkRunResult": "adapter",
    "ConfirmationPlugin": "adapter",
    "PendingConfirmation": "adapter",
    "ScriptedLlm": "offline",
}

# Loaded on first use so that loading the entry point never imports ADK.
__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CAPABILITIES",
    "FRAMEWORK",
    "AdkApprovals",
    "AdkRunResult",
    "Capabilities",
    "ConfirmationPlugin",
    "PausedRun",
    "PendingConfirmation",
    "ScriptedLlm",
]
