"""``ScriptedLlm``: an ADK model (``BaseLlm``) that plays scripted tool calls, offline.

For examples and tests that must run without a network or a key. It decides from the request
alone — never from state of its own — so a run paused in one process continues the same way in
another: turn ``n`` (the number of model turns with tool calls already in the request) returns
the ``n``-th list of scripted calls; once they are used up it replies with a text that quotes
every tool result it was given, the way a model would tell the user what happened.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import Field

#: A scripted model spends no tokens; saying so keeps ADK's metrics from warning on every turn.
_NO_TOKENS = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=0, candidates_token_count=0, total_token_count=0
)


class ScriptedLlm(BaseLlm):
    """``turns`` is a list of turns, each a list of calls ``{"name", "args", "id"}``."""

    model: str = "scripted"
    turns: list[list[dict[str, Any]]] = Field(default_factory=list)
    #: Every tool result this model was given, in order (name, call id, response): for tests.
    seen: list[tuple[str, str, Any]] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents or []
        turn = sum(1 for c in contents if c.role == "model" and any(p.function_call for p in c.parts or []))
        if turn < len(self.turns):
            parts = [
                types.Part(function_call=types.FunctionCall(id=c.get("id"), name=c["name"], args=c.get("args", {})))
                for c in self.turns[turn]
            ]
            yield LlmResponse(content=types.Content(role="model", parts=parts), usage_metadata=_NO_TOKENS)
            return
        results: dict[str, tuple[str, Any]] = {}
        for content in contents:
            for part in content.parts or []:
                response = part.function_response
                if response is not None and response.id is not None:
                    results[response.id] = (response.name or "", response.response)
        self.seen.extend((name, call_id, response) for call_id, (name, response) in results.items())
        lines = [
            f"- {name} ({call_id}): {json.dumps(response, sort_keys=True)}"
            for call_id, (name, response) in results.items()
        ]
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text="Done:\n" + "\n".join(lines))]),
            usage_metadata=_NO_TOKENS,
        )
