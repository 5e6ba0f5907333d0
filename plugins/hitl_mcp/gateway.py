"""The gateway: a low-level MCP ``Server`` whose handlers forward to a ``Client`` of the fronted server.

Only ``tools/call`` is more than a pass-through. Listing tools, resources, templates and prompts,
reading, getting and completing go to the fronted server unchanged, so the client sees the same
tools. Only the capabilities the fronted server advertises are served.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

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

#: Seconds between the probes that check, while a person decides, that the fronted server is still there.
WATCH_INTERVAL = 2.0
#: Seconds a connection to the fronted server may take before it counts as gone.
PROBE_TIMEOUT = 10.0


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
        probe: Callable[[], Awaitable[None]] | None = None,
        watch_interval: float = WATCH_INTERVAL,
    ) -> None:
        self.upstream = upstream
        self.probe = probe
        self.watch_interval = watch_interval
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
        server_gone: list[str] = []
        asking = asyncio.ensure_future(
            ask_in_place(
                self.adapter,
                f"mcp:{self.run_id}:{self._calls}",
                self.run_id,
                request,
                parent=True,
                caller_ids=False,  # fresh ids of this gateway's own
                why_cancelled=lambda: server_gone[0] if server_gone else "the MCP client went away",
            )
        )
        watching = asyncio.ensure_future(self._watch_upstream(asking, server_gone)) if self.probe else None
        try:
            task_id, decision = await asking
        except Withdrawn:
            if server_gone:  # nothing can run the call any more: say so, the request is withdrawn
                return _error(f"hitl: {server_gone[0]}; the request was withdrawn and nothing was run")
            raise  # the client is gone: nobody reads an answer
        except HITLError as exc:
            return _error(f"hitl could not ask a person, so the call was not run: {exc}")
        finally:
            if watching is not None:
                watching.cancel()
        if not decision.approved:
            await self.adapter.delivered([task_id], {"carried": "rejection"})
            return _error(decision.rejection_text())
        try:
            if self.probe is not None:
                await self.probe()  # a POST to a server that is gone would take the whole gateway down
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

    async def _watch_upstream(self, asking: asyncio.Future[Any], server_gone: list[str]) -> None:
        """While a person decides, probe the fronted server; if it is gone, withdraw the request.

        A call approved for a server that died would fail anyway: withdrawing at once (recorded
        as FAILED "withdrawn by the caller (…)") takes it off the console instead of asking a
        person about something that can no longer run.
        """
        assert self.probe is not None
        while not asking.done():
            await asyncio.sleep(self.watch_interval)
            try:
                await self.probe()
            except OSError as exc:
                server_gone.append(f"the MCP server behind the gateway went away ({type(exc).__name__}: {exc})")
                asking.cancel()
                return


def tcp_probe(url: str, timeout: float = PROBE_TIMEOUT) -> Callable[[], Awaitable[None]]:
    """A check that the HTTP server at ``url`` still accepts connections (``OSError`` if not).

    Not an MCP ping: in the MCP SDK (2.3) a request whose POST cannot connect raises inside the
    streamable HTTP transport's task group and takes the whole client down, so the gateway makes
    sure the server is there before it sends anything, with a connection of its own.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)

    async def probe() -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError as exc:
            raise OSError(f"no answer from {host}:{port} within {timeout:g} s") from exc
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass

    return probe
