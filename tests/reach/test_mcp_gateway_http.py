"""``hitl mcp-proxy --url``: the gateway in front of an MCP server on streamable HTTP.

Everything is real and separate: the fronted server is ``mcp_server.py``'s server run on streamable
HTTP by uvicorn in its own process, the gateway is ``hitl mcp-proxy`` in its own process, and the
test holds a real MCP client session with the gateway over stdio.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from hitl_core.cli import main as cli_main
from hitl_core.models import TaskState

from .helpers import DEADLINE, all_tasks, decide, env_for, waiting_task

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent
RULES = """
[[rules]]
id = "sums"
decision = "allow"
action = "add"

[[rules]]
id = "crash-test"
decision = "allow"
action = "crash"
"""
# The test server of the stdio tests, served on streamable HTTP instead.
SERVE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from mcp_server import SERVER; "
    "SERVER.run(transport='streamable-http', host='127.0.0.1', port=int(sys.argv[2]))"
)


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The fronted MCP server on streamable HTTP, in its own process; yields its URL and process."""
    port = free_port()
    env = {**os.environ, "FILES_ROOT": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(HERE), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    give_up = time.monotonic() + DEADLINE
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None:
                raise AssertionError(f"the MCP server exited {server.returncode}: {server.stderr.read()!r}") from None  # type: ignore[union-attr]
            assert time.monotonic() < give_up, "the MCP server never listened"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp", server
    server.kill()
    server.wait(timeout=DEADLINE)


@asynccontextmanager
async def through_the_proxy(tmp_path: Path, url: str) -> AsyncIterator[Client]:
    """A real client session with `hitl mcp-proxy --url URL` as a process."""
    (tmp_path / "hitl.toml").write_text(RULES)
    env = env_for(tmp_path, PYTHONPATH=os.pathsep.join(sys.path))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "hitl_core.cli", "mcp-proxy", "--url", url],
        env=env,
        cwd=str(tmp_path),
    )
    async with Client(params, cache=None, mode="legacy", read_timeout_seconds=DEADLINE) as client:
        yield client


async def test_the_client_sees_the_same_tools_as_a_direct_http_session(
    tmp_path: Path, http_server: tuple[str, Any]
) -> None:
    url, _ = http_server
    async with Client(url, cache=None) as direct, through_the_proxy(tmp_path, url) as client:
        assert (await client.list_tools()).tools == (await direct.list_tools()).tools
        assert {t.name for t in (await client.list_tools()).tools} == {"add", "write_file", "crash", "delete_branch"}
        assert client.server_info is not None and client.server_info.name == "hitl-files"
        assert text_of(await client.call_tool("add", {"a": 40, "b": 2})) == "42"  # a rule allows it


async def test_an_approved_call_reaches_the_http_server(tmp_path: Path, http_server: tuple[str, Any]) -> None:
    url, _ = http_server
    async with through_the_proxy(tmp_path, url) as client:
        call = asyncio.ensure_future(client.call_tool("write_file", {"path": "a.txt", "content": "hello"}))
        task = await waiting_task(tmp_path)
        assert task.interrupt_point is not None and task.interrupt_point.action is not None
        assert task.interrupt_point.action.args == {"path": "a.txt", "content": "hello"}
        assert not (tmp_path / "a.txt").exists()  # nothing reaches the server before a person decides
        await decide(tmp_path, task.task_id, "approve", "carol")
        result = await asyncio.wait_for(call, DEADLINE)
    assert not result.is_error and text_of(result) == "wrote 5 characters to a.txt"
    assert (tmp_path / "a.txt").read_text() == "hello"
    done = {t.task_id: t for t in await all_tasks(tmp_path)}[task.task_id]
    assert done.state is TaskState.COMPLETED


async def test_a_rejected_call_is_a_tool_error_with_the_reason_and_never_reaches_the_server(
    tmp_path: Path, http_server: tuple[str, Any]
) -> None:
    url, _ = http_server
    async with through_the_proxy(tmp_path, url) as client:
        call = asyncio.ensure_future(client.call_tool("write_file", {"path": "b.txt", "content": "x"}))
        task = await waiting_task(tmp_path)
        await decide(tmp_path, task.task_id, "reject", "bob", "not in this directory")
        result = await asyncio.wait_for(call, DEADLINE)
    assert result.is_error and text_of(result) == "Tool call rejected by bob: not in this directory"
    assert not (tmp_path / "b.txt").exists()


async def test_an_http_server_that_dies_mid_call_is_a_tool_error_and_the_task_fails(
    tmp_path: Path, http_server: tuple[str, Any]
) -> None:
    url, server = http_server
    async with through_the_proxy(tmp_path, url) as client:
        result = await asyncio.wait_for(client.call_tool("crash", {}), DEADLINE)
        assert server.wait(timeout=DEADLINE) == 3  # it really died, in the middle of the call
    assert result.is_error and "the MCP server behind the gateway failed" in text_of(result)
    (crashed,) = [t for t in await all_tasks(tmp_path) if t.parent_id]
    assert crashed.state is TaskState.FAILED
    assert crashed.error is not None and "the MCP server behind the gateway failed" in crashed.error


def proxy_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """`hitl mcp-proxy …` through the real command line's entry point, in this process: the
    refusals happen before anything is served, so no process is needed to see them."""
    code = cli_main(["mcp-proxy", "--store", f"sqlite:///{tmp_path / 'hitl.db'}", *argv])
    return code, capsys.readouterr().err


def test_a_url_that_is_not_http_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = proxy_in_process(tmp_path, capsys, "--url", "ftp://127.0.0.1/mcp")
    assert code == 2
    assert "--url must be an http:// or https:// URL, not 'ftp://127.0.0.1/mcp'" in err


def test_a_url_and_a_command_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = proxy_in_process(tmp_path, capsys, "--url", "http://127.0.0.1:1/mcp", "--", "true")
    assert code == 2
    assert "name one server: --url URL or -- SERVER_CMD ARGS, not both" in err


async def test_an_http_server_that_dies_while_a_person_decides_withdraws_the_request(
    tmp_path: Path, http_server: tuple[str, Any]
) -> None:
    url, server = http_server
    async with through_the_proxy(tmp_path, url) as client:
        call = asyncio.ensure_future(client.call_tool("write_file", {"path": "c.txt", "content": "x"}))
        task = await waiting_task(tmp_path)
        server.kill()  # the fronted server dies in the middle of the call, before anyone decided
        result = await asyncio.wait_for(call, DEADLINE)
    assert result.is_error
    assert text_of(result).startswith("hitl: the MCP server behind the gateway went away (")
    assert text_of(result).endswith("; the request was withdrawn and nothing was run")
    withdrawn = {t.task_id: t for t in await all_tasks(tmp_path)}[task.task_id]
    assert withdrawn.state is TaskState.FAILED and withdrawn.decision is None
    assert (withdrawn.error or "").startswith("withdrawn by the caller (the MCP server behind the gateway went away (")
    assert not (tmp_path / "c.txt").exists()


def test_a_url_where_nothing_listens_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # bound, then released: nothing listens there
    code, err = proxy_in_process(tmp_path, capsys, "--url", f"http://127.0.0.1:{port}/mcp")
    assert code == 1
    assert f"hitl mcp-proxy: nothing answers at http://127.0.0.1:{port}/mcp (" in err
    assert "Traceback" not in err
