"""LangChain agents for the adapter tests: ``create_agent`` + ``HumanInTheLoopMiddleware`` on a fake chat model.

Kept apart from ``lg_support`` so the cross-process tests' processes don't pay for importing LangChain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from lg_support import DONE, saver


class ScriptedChatModel(FakeMessagesListChatModel):
    """LangChain's fake chat model, able to be bound to tools, remembering what it was sent."""

    seen: list[list[BaseMessage]] = []

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    DONE.append(("send_email", {"to": to, "body": body}))
    return f"sent to {to}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    DONE.append(("delete_file", {"path": path}))
    return f"deleted {path}"


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)]
    )


def mail_agent(path: str, mode: str, *calls: tuple[str, dict[str, Any]]) -> tuple[Any, ScriptedChatModel]:
    """An agent whose model calls ``calls`` in one turn, then answers "done"; both tools gated."""
    model = ScriptedChatModel(responses=[tool_calls(*calls), AIMessage(content="done")], seen=[])
    middleware = HumanInTheLoopMiddleware(
        interrupt_on={"send_email": True, "delete_file": {"allowed_decisions": ["approve", "reject"]}},
        interrupt_mode=mode,
    )
    agent = create_agent(model, tools=[send_email, delete_file], middleware=[middleware], checkpointer=saver(path))
    return agent, model
