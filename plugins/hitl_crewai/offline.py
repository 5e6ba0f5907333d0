"""An offline ``BaseLLM`` for CrewAI: native tool calls from a script, then a report of what it saw.

It answers from the conversation it is given and nothing else (no counter of its own), so a crew
or flow continued in another process gets the same answers from a fresh instance. It needs no key
and opens no connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crewai.llms.base_llm import BaseLLM

#: One tool call the model will make: the tool's name and the arguments it passes.
ToolCall = tuple[str, dict[str, Any]]


class OfflineToolLLM(BaseLLM):
    """Turn ``k`` makes the calls ``turns[k]`` (ids ``call_0``, ``call_1``, … across turns).

    Which turn it is comes from how many tool results the conversation already holds. Once every
    scripted call has a result — or when it is given no tools — it answers with one text listing
    the tool results it saw, in order (``"publish: published Hello"``), followed by any feedback a
    person gave (``"feedback: …"``). That text is what the agent "saw", and tests read it.
    """

    turns: list[list[tuple[str, dict[str, Any]]]] = []
    #: the tool results (``role == "tool"`` messages) in the last conversation it was given
    seen_tool_results: list[str] = []

    def __init__(self, turns: Sequence[Sequence[ToolCall]] = (), **kwargs: Any) -> None:
        kwargs.setdefault("model", "offline-tool-llm")
        super().__init__(turns=[[(name, dict(args)) for name, args in turn] for turn in turns], **kwargs)

    def supports_function_calling(self) -> bool:
        return True

    def get_context_window_size(self) -> int:
        return 128_000

    def get_input_tokens_count(
        self, messages: str | list[Any], tools: list[dict[str, Any]] | None = None, response_model: Any = None
    ) -> int:
        # The offline model has no tokenizer; the count only feeds CrewAI's context-size checks, so
        # a character estimate (CrewAI's own fallback, minus its warning on every call) is enough.
        text = messages if isinstance(messages, str) else "".join(str(m.get("content") or "") for m in messages)
        return (len(text) + 3) // 4

    def call(
        self,
        messages: str | list[Any],
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str | Any:
        history = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        results = [str(m.get("content")) for m in history if m.get("role") == "tool"]
        self.seen_tool_results = results
        if tools:
            made = 0
            for turn in self.turns:
                if turn and len(results) <= made:
                    return [
                        {
                            "id": f"call_{made + n}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)},
                        }
                        for n, (name, args) in enumerate(turn)
                    ]
                made += len(turn)
        # CrewAI hands a person's feedback back as "User feedback: <text>\nInstructions: …".
        feedback = [
            str(m.get("content")).split("\n", 1)[0].removeprefix("User feedback: ")
            for m in history
            if m.get("role") == "user" and str(m.get("content")).startswith("User feedback: ")
        ]
        lines = [f"tool: {r}" for r in results] + [f"feedback: {f}" for f in feedback]
        return "\n".join(lines) or "nothing to report"
