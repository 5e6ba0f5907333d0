"""Each adapter's example, run as a user runs it, against ``hitl serve``: the example is its own
process told where the server is by its environment alone (``HITL_STORE=https://…``,
``HITL_TOKEN``, ``HITL_CA_BUNDLE``: an agent token named as the example's agent, since in server
mode the agent's name is its authenticated identity); the real ``hitl`` command approves and
rejects through the server's Unix socket; the example continues to its end.

Offline, as the adapters' own example tests are: the frameworks' test models (LangGraph needs
none; Pydantic AI's ``FunctionModel``; the OpenAI Agents SDK with the example's scripted model).
Questions (``respond``) have no ``hitl`` verb: an operator's client answers them through the
server's API, as the console does. CrewAI's example runs the same way from
tests/plugins/crewai/test_crewai_example.py, in its own environment.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine

from .conftest import ServerFactory, ServerProcess, child_env

# Importing an agent framework alone can take tens of seconds on a loaded 2-core machine.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
HITL = [sys.executable, "-m", "hitl_core.cli"]

#: Given a waiting task's snapshot: the ``hitl`` verb's arguments, or a ``respond`` answer (a str).
Decider = Callable[[dict[str, Any]], "list[str] | str"]


def run_example(
    server: ServerProcess, agent: str, script: str, args: list[str], tmp: Path, decide: Decider, expected: int
) -> subprocess.CompletedProcess[str]:
    """Start the example as ``agent`` against the server, decide each task it asks about once,
    return its output."""
    env = child_env(
        HITL_STORE=server.https_url,
        HITL_TOKEN=server.token(agent, "agent"),
        HITL_CA_BUNDLE=str(server.cert),
        HOME=str(tmp),
    )
    example = subprocess.Popen(
        [sys.executable, script, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    cli_env = child_env()
    decided: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while len(decided) < expected:
            if example.poll() is not None:
                out, err = example.communicate()
                raise AssertionError(f"the example exited ({example.returncode}) early:\n{out}\n{err[-3000:]}")
            assert time.monotonic() < deadline, f"decided {sorted(decided)}, expected {expected} tasks"
            listed = subprocess.run(
                [*HITL, "--store", server.unix_url, "ls", "--state", "waiting", "--json"],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 0, listed.stderr
            for task in json.loads(listed.stdout):
                if task["task_id"] in decided:
                    continue
                verdict = decide(task)
                if isinstance(verdict, str):
                    respond(server, task["task_id"], verdict)
                else:
                    command = [*HITL, "--store", server.unix_url, verdict[0], task["task_id"], *verdict[1:]]
                    done = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=60)
                    assert done.returncode == 0, done.stderr
                decided.add(task["task_id"])
            time.sleep(0.2)
        out, err = example.communicate(timeout=240)
    finally:
        if example.poll() is None:
            example.kill()
            example.wait(10)
    return subprocess.CompletedProcess(example.args, example.returncode, out, err)


def respond(server: ServerProcess, task_id: str, answer: str) -> None:
    async def go() -> None:
        async with HITLStateMachine(server.unix_url, load_entrypoints=False) as operator:
            await operator.respond(task_id, answer)

    asyncio.run(go())


def _action(task: dict[str, Any]) -> dict[str, Any]:
    return (task.get("interrupt_point") or {}).get("action") or {}


def test_langgraph_example_through_the_server(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(listen=True)

    def decide(task: dict[str, Any]) -> list[str] | str:
        args = _action(task).get("args") or {}
        if not _action(task):
            return "Faster search thanks to a new index."
        if args.get("env") == "canary":
            return ["reject", "--reason", "canary hosts are being patched"]
        return ["approve", "--comment", "go"]

    out = run_example(
        server,
        "deploy-pipeline",
        "examples/langgraph_deploy.py",
        ["--checkpoints", str(tmp_path / "cp.db"), "--thread", "rel-srv"],
        tmp_path,
        decide,
        expected=4,  # migrate_db and deploy_canary, then deploy_prod, then the release note
    )
    assert out.returncode == 0, out.stderr
    assert f"store: {server.https_url}" in out.stdout
    assert "migrated 0042_add_index (by root)" in out.stdout
    assert "canary not deployed (by root)" in out.stdout
    assert "prod deployed with 12 replicas (by root)" in out.stdout
    assert "release note: Faster search thanks to a new index." in out.stdout


def test_pydantic_ai_example_through_the_server(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(listen=True)

    def decide(task: dict[str, Any]) -> list[str] | str:
        name = _action(task).get("name")
        if name == "refund":
            return ["approve"]
        if name == "close_account":
            return ["reject", "--reason", "the customer has an open order"]
        return "the Visa ending 4242"

    out = run_example(server, "support-agent", "examples/pydantic_ai_refund.py", [], tmp_path, decide, expected=3)
    assert out.returncode == 0, out.stderr
    assert "refunded 35 EUR on A-1001" in out.stdout and "refunded 480 EUR on A-1002" in out.stdout
    assert "rejected by root: the customer has an open order" in out.stdout
    assert "the Visa ending 4242" in out.stdout


def test_openai_agents_example_through_the_server(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(listen=True)

    def decide(task: dict[str, Any]) -> list[str]:
        if (_action(task).get("args") or {}).get("amount") == 250:
            return ["approve"]
        return ["reject", "--reason", "call the CEO back first"]

    out = run_example(server, "payments-agent", "examples/openai_agents_payments.py", [], tmp_path, decide, expected=2)
    assert out.returncode == 0, out.stderr
    assert "transferred 250 EUR" in out.stdout
    assert "Tool call rejected by root: call the CEO back first" in out.stdout
