"""The OpenAI Agents SDK adapter across real OS processes sharing one SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hitl_openai_agents import ApprovalRunner
from oa_payments import TWO_TRANSFERS, payments_agent

from hitl_core import HITLStateMachine, TaskNotFoundError, TaskState

# Each agent process imports the SDK: on a loaded 2-core machine that alone can take tens of seconds.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

AGENT_SCRIPT = Path(__file__).with_name("oa_payments.py")
CONSOLE_SCRIPT = Path(__file__).with_name("oa_decider.py")


def spawn(*args: str, script: Path = AGENT_SCRIPT) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1", "HITL_PLUGINS": ""}
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


async def outcome(process: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    """The JSON line the process printed; fails with its stderr if it did not succeed."""
    out, err = await asyncio.to_thread(process.communicate, timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hitl.db'}"


async def test_a_decision_from_another_process_reaches_the_waiting_run(
    store: str, transfers: list[tuple[str, int]]
) -> None:
    machine = HITLStateMachine(store, load_entrypoints=False)
    agent, model = payments_agent(TWO_TRANSFERS)
    console = spawn(store, "reject", "over the daily limit", script=CONSOLE_SCRIPT)
    try:
        result = await asyncio.wait_for(ApprovalRunner(machine).run(agent, "pay both", run_id="xp1"), 240)
        decided = await outcome(console)
    finally:
        await machine.close()
    assert decided["pid"] != os.getpid()
    assert transfers == []
    rejection = "Tool call rejected by console-user: over the daily limit"
    assert model.seen_outputs == {"call_0": rejection, "call_1": rejection}
    assert result.final_output == f"transfer call_0: {rejection}; transfer call_1: {rejection}"


async def test_a_run_paused_in_one_process_is_resumed_in_another(store: str) -> None:
    started = await outcome(spawn("start", store, "xp2"))
    assert started["task_ids"] == ["xp2:call_0", "xp2:call_1"] and started["transfers"] == []
    # The starting process has exited; a third process resumes once we decide here.
    resumer = spawn("resume", store, "xp2")
    machine = HITLStateMachine(store, load_entrypoints=False)
    try:
        await asyncio.sleep(0.5)  # the resumer is waiting by now, or will find the decisions made
        await machine.approve("xp2:call_0", "alice")
        await machine.reject("xp2:call_1", "alice", "eve is not a known payee")
        finished = await outcome(resumer)
        tasks = [await machine.get_task(t) for t in started["task_ids"]]
    finally:
        await machine.close()
    assert len({started["pid"], finished["pid"], os.getpid()}) == 3
    assert finished["transfers"] == [["bob", 5]]
    assert finished["seen"] == {
        "call_0": "sent 5 to bob",
        "call_1": "Tool call rejected by alice: eve is not a known payee",
    }
    assert [t.state for t in tasks if t is not None] == [TaskState.COMPLETED, TaskState.COMPLETED]


async def test_resuming_a_run_another_process_finished_is_a_clear_error(store: str) -> None:
    machine = HITLStateMachine(store, load_entrypoints=False)
    agent, _ = payments_agent(TWO_TRANSFERS)
    try:
        await ApprovalRunner(machine).start(agent, "pay both", run_id="xp3")
        for task_id in ("xp3:call_0", "xp3:call_1"):
            await machine.approve(task_id, "alice")
        finished = await outcome(spawn("resume", store, "xp3"))
        assert finished["transfers"] == [["bob", 5], ["eve", 900]]
        with pytest.raises(TaskNotFoundError, match="no paused openai-agents run with this run_id"):
            await ApprovalRunner(machine).resume(agent, "xp3")
    finally:
        await machine.close()
