"""A real MCP server for the gateway's tests (stdio when run as a script; in-process via ``SERVER``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

SERVER = MCPServer("files", instructions="a toy file server")


@SERVER.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@SERVER.tool()
def write_file(path: str, content: str) -> str:
    """Write a file (under $FILES_ROOT, else the working directory)."""
    target = Path(os.environ.get("FILES_ROOT", ".")) / path
    target.write_text(content)
    return f"wrote {len(content)} characters to {path}"


@SERVER.tool()
def crash() -> str:
    """Die in the middle of the call, as a server with a bug does."""
    sys.stderr.flush()
    os._exit(3)


class Confirm(BaseModel):
    confirm: bool


@SERVER.tool()
async def delete_branch(name: str, ctx: Context) -> str:
    """Ask the user (an elicitation) before deleting."""
    answer = await ctx.elicit(f"Delete branch {name}?", schema=Confirm)
    if answer.action == "accept" and answer.data.confirm:
        return f"deleted {name}"
    return f"kept {name} ({answer.action})"


@SERVER.resource("notes://today")
def today() -> str:
    return "ship the gateway"


@SERVER.prompt()
def review(path: str) -> str:
    return f"Review {path} carefully."


if __name__ == "__main__":
    SERVER.run()
