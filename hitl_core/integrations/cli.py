"""Registers ``hitl ask``, ``hitl hook claude-code`` and ``hitl mcp-proxy`` (one call from ``hitl_core.cli``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _mcp_proxy(args: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401  (the `mcp` extra: imported only when the gateway runs)
    except ImportError as exc:
        print(f"hitl mcp-proxy: the MCP SDK is not installed ({exc}): pip install 'hitl[mcp]'", file=sys.stderr)
        return 2
    from hitl_mcp.cli import run_proxy

    return run_proxy(args)


def add_integration_commands(sub: Any, epilog: str) -> None:
    from .ask import add_ask_command
    from .claude_code import add_hook_command

    add_ask_command(sub, epilog)
    add_hook_command(sub, epilog)
    proxy = sub.add_parser(
        "mcp-proxy",
        help="an MCP server in front of another: every tools/call passes hitl's rules (and a person)",
        description="Front the MCP server started by SERVER_CMD (stdio) or at URL (streamable HTTP).",
    )
    proxy.add_argument("--name", help="this gateway's name (default: hitl-<server name>)")
    proxy.add_argument("--timeout", type=float, default=None, help="seconds to wait for a person, then reject")
    proxy.add_argument("--severity", default="medium", choices=("low", "medium", "high", "critical"))
    proxy.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="store URL (default: $HITL_STORE)")
    proxy.add_argument("--url", help="front the MCP server at this http(s) URL (streamable HTTP) instead of a command")
    proxy.add_argument("server", nargs=argparse.REMAINDER, help="-- SERVER_CMD ARGS, or an http(s) URL")
    proxy.set_defaults(handler=_mcp_proxy)
