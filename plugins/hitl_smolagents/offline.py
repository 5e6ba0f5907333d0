"""An offline smolagents ``Model``: it answers from a script, and keeps what it was shown.

A framework-level test double (no key, no network) for the tests and the example: it implements
smolagents' ``Model.generate`` and returns scripted ``ChatMessage``\\s — tool calls for a
``ToolCallingAgent``, a ``<code>`` blob for a ``CodeAgent`` — one per step, in order. ``seen``
keeps every conversation the agent sent it, so a test can check what the model read (a
rejection's reason, an edited call's output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smolagents.models import ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, MessageRole, Model

#: One scripted step: a ready ChatMessage, a list of (tool, arguments) calls, or code to run.
Reply = ChatMessage | list[tuple[str, Any]] | str


class ScriptedModel(Model):
    """Step ``k`` answers ``replies[k]``: ``[(tool, args), …]`` are tool calls (ids ``call_<k>_<n>``),
    a string is a code blob (wrapped in ``<code>…</code>`` for a ``CodeAgent``).

    Past the end of the script it gives up with a final answer that lists the observations it was
    shown, so a run always ends: ``final_answer`` as a tool call, or as code when ``code=True``.
    """

    def __init__(self, replies: Sequence[Reply], *, code: bool = False) -> None:
        super().__init__(model_id="hitl-scripted")
        self.replies = list(replies)
        self.code = code
        #: every conversation the agent sent, oldest first
        self.seen: list[list[ChatMessage]] = []

    def generate(
        self,
        messages: list[ChatMessage],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        step = len(self.seen)
        self.seen.append(list(messages))
        if step < len(self.replies):
            reply = self.replies[step]
        else:
            reply = 'final_answer("done")' if self.code else [("final_answer", {"answer": "done"})]
        if isinstance(reply, ChatMessage):
            return reply
        if isinstance(reply, str):
            return ChatMessage(role=MessageRole.ASSISTANT, content=f"Thought: next step.\n<code>\n{reply}\n</code>")
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content="",
            tool_calls=[
                ChatMessageToolCall(
                    id=f"call_{step}_{n}",
                    type="function",
                    function=ChatMessageToolCallFunction(name=name, arguments=args),
                )
                for n, (name, args) in enumerate(reply)
            ],
        )

    def last_seen_text(self) -> str:
        """The text of the last conversation the agent sent (what the model read last)."""
        return "\n".join(_text(m) for m in (self.seen[-1] if self.seen else []))


def _text(message: Any) -> str:
    content = message.content if hasattr(message, "content") else message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")
