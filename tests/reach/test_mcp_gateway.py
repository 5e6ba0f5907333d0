"""The MCP gateway with a real MCP server and a real MCP client session: in-process, and over stdio
as ``hitl mcp-proxy -- python mcp_server.py`` (both the gateway and the server are processes)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hitl_mcp import Gateway
from mcp import Client, StdioServerParameters

from hitl_core import HITLStateMachine
from hitl_core.models import InterruptKind, TaskContext, TaskState
from hitl_core.policies import parse_config

from .helpers import DEADLINE, all_tasks, asked_action, decide, env_for, hitl, store_url, waiting_task
from .mcp_server import SERVER

RULES = """
[[rules]]
id = "sums"
decision = "allow"
action = "add"

[[rules]]
id = "branches"
decision = "allow"
action = "delete_branch"

[[rules]]
id = "crash-test"
decision = "allow"
action = "crash"
"""
HERE = Path(__file__).parent


def is_question(task: TaskContext) -> bool:
    return task.interrupt_point is not None and task.interrupt_point.kind is InterruptKind.QUESTION


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


@asynccontextmanager
async def in_process(tmp_path: Path, **gateway: Any) -> AsyncIterator[Client]:
    """client → gateway → the test server, all in this process; the store is a real SQLite file."""
    fronting: list[Gateway] = []

    async def elicit(context: Any, params: Any) -> Any:
        return await fronting[0].elicit(context, params)

    async with (
        HITLStateMachine(store_url(tmp_path), config=parse_config(RULES), load_entrypoints=False) as machine,
        Client(SERVER, cache=None, elicitation_callback=elicit, mode="legacy") as upstream,
    ):
        fronting.append(Gateway(upstream, machine, run_id="r1", **gateway))
        async with Client(fronting[0].server(), cache=None) as client:
            yield client


@asynccontextmanager
async def over_stdio(tmp_path: Path) -> AsyncIterator[Client]:
    """A real client session with `hitl mcp-proxy` as a process, fronting the server as a process."""
    (tmp_path / "hitl.toml").write_text(RULES)
    env = env_for(tmp_path, FILES_ROOT=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "hitl_core.cli", "mcp-proxy", "--", sys.executable, str(HERE / "mcp_server.py")],
        env=env,
        cwd=str(tmp_path),
    )
    async with Client(params, cache=None, mode="legacy", read_timeout_seconds=DEADLINE) as client:
        yield client


async def test_the_client_sees_the_same_tools_resources_and_prompts(tmp_path: Path) -> None:
    async with Client(SERVER, cache=None) as direct, in_process(tmp_path) as client:
        assert [t.name for t in (await client.list_tools()).tools] == [
            t.name for t in (await direct.list_tools()).tools
        ]
        assert (await client.list_tools()).tools == (await direct.list_tools()).tools
        resource = await client.read_resource("notes://today")
        assert resource.contents[0].text == "ship the gateway"  # type: ignore[union-attr]
        prompt = await client.get_prompt("review", {"path": "a.py"})
        assert prompt.messages[0].content.text == "Review a.py carefully."  # type: ignore[union-attr]
        assert client.server_info is not None and client.server_info.name == "hitl-files"


async def test_a_call_a_rule_allows_passes_through_at_once_and_is_recorded(tmp_path: Path) -> None:
    async with in_process(tmp_path) as client:
        result = await client.call_tool("add", {"a": 2, "b": 3})
    assert not result.is_error and text_of(result) == "5"
    tasks = {t.task_id: t for t in await all_tasks(tmp_path)}
    assert tasks["mcp:r1:1"].state is TaskState.COMPLETED and tasks["mcp:r1:1"].parent_id == "mcp:r1"
    assert await asked_action(tmp_path, "mcp:r1:1") == {"name": "add", "args": {"a": 2, "b": 3}}


async def test_a_persons_edit_is_what_the_server_receives(tmp_path: Path) -> None:
    os.environ["FILES_ROOT"] = str(tmp_path)
    try:
        async with in_process(tmp_path) as client:
            call = asyncio.ensure_future(client.call_tool("write_file", {"path": "a.txt", "content": "rm -rf /"}))
            task = await waiting_task(tmp_path)
            await decide(tmp_path, task.task_id, "edit", {"path": "a.txt", "content": "echo safe"}, "alice")
            result = await asyncio.wait_for(call, DEADLINE)
    finally:
        del os.environ["FILES_ROOT"]
    assert not result.is_error
    assert (tmp_path / "a.txt").read_text() == "echo safe"


async def test_a_rejection_is_a_tool_error_whose_text_is_the_reason(tmp_path: Path) -> None:
    async with in_process(tmp_path) as client:
        call = asyncio.ensure_future(client.call_tool("write_file", {"path": "b.txt", "content": "x"}))
        task = await waiting_task(tmp_path)
        await decide(tmp_path, task.task_id, "reject", "bob", "not in this directory")
        result = await asyncio.wait_for(call, DEADLINE)
    assert result.is_error and text_of(result) == "Tool call rejected by bob: not in this directory"
    assert not (tmp_path / "b.txt").exists()


async def test_nobody_deciding_by_the_timeout_is_a_rejection(tmp_path: Path) -> None:
    async with in_process(tmp_path, timeout=1.0) as client:
        result = await client.call_tool("write_file", {"path": "c.txt", "content": "x"})
    assert result.is_error and "rejected by hitl:timeout" in text_of(result)
    assert not (tmp_path / "c.txt").exists()


async def test_arguments_over_the_payload_limit_are_refused_and_nothing_is_recorded(tmp_path: Path) -> None:
    os.environ["HITL_MAX_PAYLOAD_BYTES"] = "4096"
    try:
        async with in_process(tmp_path) as client:
            result = await client.call_tool("write_file", {"path": "d.txt", "content": "x" * 5000})
    finally:
        del os.environ["HITL_MAX_PAYLOAD_BYTES"]
    assert result.is_error and "over the limit of 4,096 bytes" in text_of(result)
    assert [t for t in await all_tasks(tmp_path) if t.parent_id] == []


@pytest.mark.processes
async def test_over_stdio_a_real_client_session_calls_through_the_gateway_process(tmp_path: Path) -> None:
    async with over_stdio(tmp_path) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"add", "write_file", "crash", "delete_branch"}
        result = await client.call_tool("add", {"a": 40, "b": 2})
        assert text_of(result) == "42"
        call = asyncio.ensure_future(client.call_tool("write_file", {"path": "e.txt", "content": "hello"}))
        task = await waiting_task(tmp_path)
        await decide(tmp_path, task.task_id, "approve", "carol")
        assert not (await asyncio.wait_for(call, DEADLINE)).is_error
        call = asyncio.ensure_future(client.call_tool("delete_branch", {"name": "old"}))  # the server elicits
        question = await waiting_task(tmp_path, where=is_question)
        await decide(tmp_path, question.task_id, "respond", {"confirm": True}, "carol")
        assert text_of(await asyncio.wait_for(call, DEADLINE)) == "deleted old"
    assert (tmp_path / "e.txt").read_text() == "hello"


@pytest.mark.processes
async def test_a_server_that_crashes_mid_call_is_a_tool_error_and_the_task_fails(tmp_path: Path) -> None:
    async with over_stdio(tmp_path) as client:
        result = await client.call_tool("crash", {})
    assert result.is_error and "the MCP server behind the gateway failed" in text_of(result)
    crashed = [t for t in await all_tasks(tmp_path) if t.parent_id]
    assert len(crashed) == 1 and crashed[0].state is TaskState.FAILED
    assert crashed[0].error is not None and "the MCP server behind the gateway failed" in crashed[0].error


@pytest.mark.processes
async def test_a_client_that_disconnects_while_a_person_decides_withdraws_the_request(tmp_path: Path) -> None:
    async def call_and_hang() -> None:
        async with over_stdio(tmp_path) as client:
            await client.call_tool("write_file", {"path": "f.txt", "content": "x"})

    session = asyncio.ensure_future(call_and_hang())
    task = await waiting_task(tmp_path)
    session.cancel()  # the client goes away: the gateway's stdin closes
    with pytest.raises(asyncio.CancelledError):
        await session
    give_up = asyncio.get_running_loop().time() + DEADLINE
    while asyncio.get_running_loop().time() < give_up:
        withdrawn = {t.task_id: t for t in await all_tasks(tmp_path)}[task.task_id]
        if withdrawn.state is TaskState.FAILED:
            break
        await asyncio.sleep(0.1)
    assert withdrawn.state is TaskState.FAILED and withdrawn.decision is None
    assert withdrawn.error == "withdrawn by the caller (the MCP client went away)"
    assert not (tmp_path / "f.txt").exists()


@pytest.mark.parametrize(("answer", "result"), [({"confirm": True}, "deleted main"), (None, "kept main (decline)")])
async def test_the_fronted_servers_elicitation_is_a_question_a_person_answers(
    tmp_path: Path, answer: dict[str, Any] | None, result: str
) -> None:
    async with in_process(tmp_path) as client:
        call = asyncio.ensure_future(client.call_tool("delete_branch", {"name": "main"}))
        question = await waiting_task(tmp_path, where=is_question)
        assert question.interrupt_point is not None
        assert question.interrupt_point.reason == "Delete branch main?"
        assert question.interrupt_point.response_schema is not None
        assert question.interrupt_point.allowed_decisions == ["respond", "reject"]
        if answer is None:
            await decide(tmp_path, question.task_id, "reject", "alice", "keep it")
        else:
            await decide(tmp_path, question.task_id, "respond", answer, "alice")
        assert text_of(await asyncio.wait_for(call, DEADLINE)) == result


async def test_an_elicitation_answer_that_breaks_the_schema_is_refused_before_it_is_recorded(tmp_path: Path) -> None:
    from hitl_core.errors import PayloadError

    async with in_process(tmp_path) as client:
        call = asyncio.ensure_future(client.call_tool("delete_branch", {"name": "dev"}))
        question = await waiting_task(tmp_path, where=is_question)
        with pytest.raises(PayloadError):
            await decide(tmp_path, question.task_id, "respond", {"confirm": "yes please"}, "alice")
        await decide(tmp_path, question.task_id, "respond", {"confirm": False}, "alice")
        assert text_of(await asyncio.wait_for(call, DEADLINE)) == "kept dev (accept)"


async def test_an_elicitation_nobody_answers_by_the_deadline_is_cancelled(tmp_path: Path) -> None:
    async with in_process(tmp_path, timeout=1.0) as client:
        result = await client.call_tool("delete_branch", {"name": "main"})
    assert text_of(result) == "kept main (cancel)"


def test_without_the_mcp_sdk_the_gateway_says_what_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mcp'\", name='mcp')\n")
    result = hitl(tmp_path, "mcp-proxy", "--", "true", PYTHONPATH=str(tmp_path / "shadow"))
    assert result.returncode == 2
    assert b"the MCP SDK is not installed" in result.stderr and b"pip install 'hitl[mcp]'" in result.stderr
