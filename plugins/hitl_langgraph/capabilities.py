"""What a LangGraph pause can carry back, so the console offers only decisions that will work."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One adapter's answer to "what can a person's decision do in this framework?".

    ``reject_reason`` is True when a rejection's reason reaches the model (not just a log);
    ``cross_process`` when a run paused in one process can be resumed by another.
    """

    framework: str
    approve: bool
    reject_reason: bool
    edit: bool
    respond: bool
    cross_process: bool

    @property
    def allowed_decisions(self) -> list[str]:
        """The decisions to put on an interrupt's ``allowed_decisions`` (approve and reject always)."""
        allowed = ["approve", "reject"]
        if self.edit:
            allowed.append("edit")
        if self.respond:
            allowed.append("respond")
        return allowed


#: LangGraph resumes with any JSON value, so every decision can travel back; with a durable
#: checkpointer (SqliteSaver on a file) any process can resume the thread.
CAPABILITIES = Capabilities(framework="langgraph", approve=True, reject_reason=True, edit=True,
                            respond=True, cross_process=True)
