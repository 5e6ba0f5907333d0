"""The gateway: a low-level MCP ``Server`` whose handlers forward to a ``Client`` of the fronted server.

Only ``tools/call`` is more than a pass-through. Listing tools, resources, templates and prompts,
reading, getting and completing go to the fronted server unchanged, so the client sees the same
tools. Only the capabilities the fronted server advertises are served.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.server.lowlevel import Server

from hitl_core.adapters import Adapter, Request
from hitl_core.canonical import checked_copy
from hitl_core.errors import HITLError, InvalidTransitionError, PayloadError
from hitl_core.integrations.blocking import Withdrawn, ask_in_place, effective_args
from hitl_core.machine import HITLStateMachine
from hitl_core.models import Action, DecisionType, InterruptKind, Severity

from . import CAPABILITIES


class MCPApprovals(Adapter):
    capabilities = CAPABILITIES


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


class Gateway:
    """Fronts ``upstream`` (an entered ``mcp.Client``); ``server()`` is what clients talk to.

    Each gateway process is one run (``mcp:<run_id>``, the parent task); each ``tools/call`` a
    task ``mcp:<run_id>:<n>`` whose action is the tool and its arguments.
    """

    def __init__(
        self,
        upstream: Client,
        machine: HITLStateMachine,
        *,
        name: str | None = None,
        timeout: float | None = None,
        severity: Severity | str = Severity.MEDIUM,
        run_id: str | None = None,
    ) -> None:
        self.upstream = upstream
        self.adapter = MCPApprovals(machine, agent=name or "mcp", severity=severity, timeout=timeout)
        self.name = name or f"hitl-{upstream.server_info.name if upstream.server_info else 'mcp'}"
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._calls = 0

    def server(self) -> Server[Any]:
        caps = self.upstream.server_capabilities
        handlers: dict[str, Any] = {}
        if caps.tools is not None:
            handlers.update(on_list_tools=self._list_tools, on_call_tool=self._call_tool)
        if caps.resources is not None:
            handlers.update(
                on_list_resources=self._list_resources,
                on_list_resource_templates=self._list_resource_templates,
                on_read_resource=self._read_resource,
            )
        if caps.prompts is not None:
            handlers.update(on_list_prompts=self._list_prompts, on_get_prompt=self._get_prompt)
        if caps.completions is not None:
            handlers.update(on_completion=self._complete)
        info = self.upstream.server_info
        return Server(
            self.name,
            version=info.version if info else "",
            instructions=self.upstream.instructions,
            **handlers,
        )

    # -- pass-through ---------------------------------------------------------------------------

    @staticmethod
    def _cursor(params: Any) -> str | None:
        return getattr(params, "cursor", None) if params is not None else None

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return await self.upstream.list_tools(cursor=self._cursor(params), cache_mode="refresh")

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        return await self.upstream.list_resources(cursor=self._cursor(params))

    async def _list_resource_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return await self.upstream.list_resource_templates(cursor=self._cursor(params))

    async def _read_resource(self, ctx: Any, params: Any) -> types.ReadResourceResult:
        return await self.upstream.read_resource(params.uri)

    async def _list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return await self.upstream.list_prompts(cursor=self._cursor(params))

    async def _get_prompt(self, ctx: Any, params: Any) -> types.GetPromptResult:
        return await self.upstream.get_prompt(params.name, params.arguments)

    async def _complete(self, ctx: Any, params: Any) -> types.CompleteResult:
        return await self.upstream.complete(params.ref, params.argument.model_dump(), params.context_arguments)

    # -- the fronted server asks the user something -----------------------------------------------

    async def elicit(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        """The upstream client's ``elicitation_callback``: a person answers the form through hitl.

        Form mode only (a URL elicitation sends the user elsewhere, which hitl cannot do for
        them). The answer is checked against the requested schema by the machine before it is
        recorded; accept carries it, a rejection declines, a timeout cancels.
        """
        if not isinstance(params, types.ElicitRequestFormParams):
            return types.ErrorData(code=types.INVALID_REQUEST, message="hitl answers form elicitations only")
        self._calls += 1
        request = Request(
            reason=params.message,
            kind=InterruptKind.QUESTION,
            response_schema=dict(params.requested_schema),
            allowed_decisions=("respond", "reject"),
            context={"server": self.name},
            step="elicitation",
        )
        try:
            task_id, decision = await ask_in_place(
                self.adapter,
                f"mcp:{self.run_id}:{self._calls}",
                self.run_id,
                request,
                parent=True,
                caller_ids=False,  # fresh ids of this gateway's own
                why_cancelled=lambda: "the MCP server stopped asking",
            )
        except HITLError as exc:
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"hitl could not ask a person: {exc}")
        await self.adapter.delivered([task_id], {"carried": decision.effective_type.value})
        if decision.effective_type is DecisionType.RESPOND and isinstance(decision.response, dict):
            return types.ElicitResult(action="accept", content=decision.response)
        return types.ElicitResult(action="cancel" if decision.type is DecisionType.TIMEOUT else "decline")

    # -- the one call that asks -----------------------------------------------------------------

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool, arguments = params.name, params.arguments or {}
        machine = self.adapter.machine
        try:
            arguments = checked_copy(arguments, f"the arguments of {tool!r}", machine.max_payload_bytes)
        except PayloadError as exc:
            return _error(f"hitl refused the call, nothing was run: {exc}")
        self._calls += 1
        text = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
        request = Request(
            reason=f"{tool} {text}" if len(text) < 240 else f"{tool} {text[:239]}…",
            action=Action(name=tool, args=arguments),
            allowed_decisions=("approve", "reject", "edit"),
            step=tool,
        )
        try:
            task_id, decision = await ask_in_place(
                self.adapter,
                f"mcp:{self.run_id}:{self._calls}",
                self.run_id,
                request,
                parent=True,
                caller_ids=False,  # fresh ids of this gateway's own
                why_cancelled=lambda: "the MCP client went away",
            )
        except Withdrawn:
            raise  # the client is gone: nobody reads an answer
        except HITLError as exc:
            return _error(f"hitl could not ask a person, so the call was not run: {exc}")
        if not decision.approved:
            await self.adapter.delivered([task_id], {"carried": "rejection"})
            return _error(decision.rejection_text())
        try:
            result = await self.upstream.call_tool(tool, effective_args(decision, arguments))
        except Exception as exc:
            why = f"the MCP server behind the gateway failed: {type(exc).__name__}: {exc}"
            try:
                await machine.fail(task_id, why)  # no retry question: this call's client has its answer
            except InvalidTransitionError:
                pass
            return _error(f"hitl: {why}")
        await self.adapter.delivered([task_id], {"is_error": bool(result.is_error)})
        return result
