"""hitl's MCP gateway: an MCP server in front of any other, every ``tools/call`` through hitl.

``hitl mcp-proxy -- SERVER_CMD ARGS`` (or a URL) serves on stdio what the fronted server serves —
the same tools, resources and prompts — and routes each ``tools/call`` through the rules of
``hitl.toml`` and, when they say ask, a person: approve passes the call on (with the edited
arguments if edited), reject returns a tool error whose text is the reason. The fronted server's
form elicitations (``elicitation/create``) are asked as questions: a person's answer is accepted,
a rejection declines, and nobody answering by the deadline cancels.

Public: ``Gateway`` (``gateway``), ``MCPApprovals`` and ``CAPABILITIES``. The package imports
``mcp`` only when those are used, so the entry point loads in every hitl process for nothing.
"""

from __future__ import annotations

from hitl_core.adapters import Capabilities, lazy_exports

CAPABILITIES = Capabilities(
    framework="mcp",
    decisions=("approve", "reject", "edit", "respond"),
    rejection_reason="yes: a tool error (isError) whose text is the reason",
    partial_decisions="each tools/call is decided on its own; the client waits for its answer",
    cross_process_resume=False,
    notes="any MCP client (Claude Desktop, Cursor, VS Code); edited arguments are what the server receives; "
    "the fronted server's form elicitations are questions a person answers (respond)",
)

__getattr__ = lazy_exports(__name__, {"Gateway": "gateway", "MCPApprovals": "gateway"})
__all__ = ["CAPABILITIES", "Gateway", "MCPApprovals"]
