"""``hitl mcp-proxy``: serve the gateway on stdio in front of SERVER_CMD (stdio) or a URL."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any


async def serve(args: argparse.Namespace, store_url: str) -> int:
    from mcp import Client, StdioServerParameters

    from hitl_core.machine import HITLStateMachine
    from hitl_core.policies import found_config

    from .gateway import Gateway, tcp_probe

    server_argv = list(args.server or [])
    if server_argv and server_argv[0] == "--":
        server_argv = server_argv[1:]
    url = getattr(args, "url", None)
    if url is not None and server_argv:
        print("hitl mcp-proxy: name one server: --url URL or -- SERVER_CMD ARGS, not both", file=sys.stderr)
        return 2
    if url is None and len(server_argv) == 1 and server_argv[0].startswith(("http://", "https://")):
        url = server_argv[0]  # `hitl mcp-proxy -- http://…`, as before --url existed
    if url is None and not server_argv:
        print("hitl mcp-proxy: name the server: --url URL (streamable HTTP), or -- SERVER_CMD ARGS", file=sys.stderr)
        return 2
    target: str | StdioServerParameters
    if url is not None:
        if not url.startswith(("http://", "https://")):
            print(f"hitl mcp-proxy: --url must be an http:// or https:// URL, not {url!r}", file=sys.stderr)
            return 2
        target = url
        try:
            await tcp_probe(url)()
        except OSError as exc:
            print(f"hitl mcp-proxy: nothing answers at {url} ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
    else:
        target = StdioServerParameters(command=server_argv[0], args=server_argv[1:], env=dict(os.environ))
    async with HITLStateMachine(store_url, config=found_config(sweep=False)) as machine:
        gateway: Gateway | None = None

        async def elicit(context: Any, params: Any) -> Any:
            assert gateway is not None  # set before the upstream session can send anything
            return await gateway.elicit(context, params)

        async with Client(target, cache=None, mode="legacy", elicitation_callback=elicit) as upstream:
            gateway = Gateway(
                upstream,
                machine,
                name=args.name,
                timeout=args.timeout,
                severity=args.severity,
                probe=tcp_probe(target) if isinstance(target, str) else None,
            )
            await _serve_stdio(gateway)
    return 0


async def _serve_stdio(gateway: Any) -> None:
    from mcp.server.stdio import stdio_server

    server = gateway.server()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def run_proxy(args: argparse.Namespace) -> int:
    from hitl_core.cli_commands import exit_code_for, resolve_store_url
    from hitl_core.errors import HITLError

    try:
        return asyncio.run(serve(args, resolve_store_url(getattr(args, "store", None))))
    except HITLError as exc:
        print(f"hitl mcp-proxy: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
