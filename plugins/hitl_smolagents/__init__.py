"""hitl adapter for smolagents: a person approves each tool call or each code blob before it runs.

* ``ToolCallingAgent`` — every tool call (and every call to a managed agent) the model makes is a
  hitl task whose args are the call's arguments. Approve runs it; edit runs it with the edited
  arguments; reject does not run it and the reason is the call's observation, which the model
  reads on its next step.
* ``CodeAgent`` — every code blob the agent is about to execute is a hitl task whose args are
  ``{"code": …}``. Approve executes it; edit executes the edited code; reject executes nothing and
  the reason is the step's observation.

smolagents runs an agent as one in-memory loop (``agent.run``) with no way to pause it, persist it
and resume it elsewhere, so the guard blocks the agent's own thread until a decision arrives —
from the console, the CLI, or any process on the same store. ``SmolagentsApprovals.guard(agent)``
installs it on an existing agent.

Importing this package does not import smolagents: it is an entry-point plugin that every hitl
machine loads. The classes are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hitl_core.adapters import Capabilities, lazy_exports

if TYPE_CHECKING:
    from .guard import SmolagentsApprovals
    from .offline import ScriptedModel

#: The value of ``TaskContext.framework`` on tasks this adapter creates.
FRAMEWORK = "smolagents"

CAPABILITIES = Capabilities(
    framework=FRAMEWORK,
    decisions=("approve", "reject", "edit"),
    rejection_reason="yes: the reason is the refused call's observation (ToolCallingAgent) or the "
    "step's execution logs (CodeAgent); the model reads it on its next step",
    partial_decisions="each call blocks its own thread: smolagents runs one step's tool calls in "
    "parallel threads, so a decided call runs while its siblings still wait",
    cross_process_resume=False,
    notes="smolagents cannot pause a run and resume it in another process (agent.run is one "
    "in-memory loop): the agent's process blocks until a decision arrives, which may be made in "
    "any process on the same store (console, CLI). A person's answer (respond) is not offered.",
)

_LAZY = {
    "SmolagentsApprovals": "guard",
    "ScriptedModel": "offline",
}

# Loaded on first use so that loading the entry point never imports smolagents.
__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["CAPABILITIES", "FRAMEWORK", "Capabilities", "ScriptedModel", "SmolagentsApprovals"]
