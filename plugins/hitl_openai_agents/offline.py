"""An offline ``Model`` for the Agents SDK: it calls tools from a script, then reports what it saw.

Why not the SDK's ``agents.testing.ScriptedModel``? A scripted model is consumed step by step,
so a run resumed in another process would need the rest of the script handed over too. This
model is stateless: what it answers depends only on the conversation it is given, so any
process holding the same script continues a paused run exactly as the first would have.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agents import Usage
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

#: One tool call the model will make: the tool's name and the arguments it passes.
ToolCall = tuple[str, dict[str, Any]]


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


class OfflineToolModel(Model):
    """Turn ``k`` makes the calls ``turns[k]`` (call ids ``call_0``, ``call_1``, … across turns).

    Which turn it is comes from how many function calls the conversation already holds. After the
    last turn it answers with one message listing every tool output it was given, in order
    (``"transfer call_0: sent 5 to bob"``), which is what the agent "saw": tests read it to check
    that a rejection's reason reached the model.
    """

    def __init__(self, turns: Sequence[Sequence[ToolCall]]) -> None:
        self.turns = [list(turn) for turn in turns]
        #: the tool outputs in the last conversation this model was given (call id -> output)
        self.seen_outputs: dict[str, str] = {}

    def _respond(self, items: list[Any]) -> list[Any]:
        calls = {
            str(_field(i, "call_id")): str(_field(i, "name")) for i in items if _field(i, "type") == "function_call"
        }
        outputs = {
            str(_field(i, "call_id")): str(_field(i, "output"))
            for i in items
            if _field(i, "type") == "function_call_output"
        }
        self.seen_outputs = outputs
        made = 0
        for turn in self.turns:
            if turn and len(calls) <= made:
                return [
                    ResponseFunctionToolCall(
                        id=f"call_{made + n}",
                        call_id=f"call_{made + n}",
                        type="function_call",
                        name=name,
                        arguments=json.dumps(args),
                    )
                    for n, (name, args) in enumerate(turn)
                ]
            made += len(turn)
        text = "; ".join(f"{calls.get(call_id, '?')} {call_id}: {output}" for call_id, output in outputs.items())
        return [
            ResponseOutputMessage(
                id="msg_final",
                type="message",
                role="assistant",
                status="completed",
                content=[
                    ResponseOutputText(
                        text=text or "nothing to report", type="output_text", annotations=[], logprobs=[]
                    )
                ],
            )
        ]

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        items: list[Any] = [] if isinstance(input, str) else list(input)
        return ModelResponse(output=self._respond(items), usage=Usage(), response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        # The adapter drives Runner.run, never the streamed variant.
        raise NotImplementedError("OfflineToolModel does not stream; use Runner.run")
