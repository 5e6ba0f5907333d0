"""A decision made by another OS process — the real ``hitl`` command line — reaches a waiting agent.

smolagents cannot pause a run and resume it in another process (``agent.run`` is one in-memory
loop), so the agent's process waits; the decision may come from anywhere on the same store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hitl_smolagents import ScriptedModel, SmolagentsApprovals
from smol_helpers import DEADLINE, all_tasks, code_agent, running, store_url, tool_agent, waiting_tasks

from hitl_core import TaskState

pytestmark = pytest.mark.processes


def hitl_command(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(HITL_STORE=store_url(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run(
        [sys.executable, "-m", "hitl_core.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=DEADLINE,
    )


async def test_hitl_approve_in_another_process_lets_the_waiting_tool_call_run(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel([[("transfer", {"to": "bob", "amount": 5})]])
    agent = approvals.guard(tool_agent(model))
    run = running(lambda: agent.run("pay bob"))
    (task,) = await waiting_tasks(tmp_path)
    done = await asyncio.to_thread(hitl_command, tmp_path, "approve", task.task_id, "--as", "carol")
    assert done.returncode == 0, done.stderr
    assert await asyncio.wait_for(run, DEADLINE) == "done"
    assert transfers == [("bob", 5)]
    decided = (await all_tasks(tmp_path))[task.task_id]
    assert decided.state is TaskState.COMPLETED and decided.decision is not None
    assert decided.decision.actor.id == "carol" and decided.decision.actor.source == "cli"


async def test_hitl_reject_in_another_process_stops_the_code_and_the_model_reads_the_reason(
    tmp_path: Path, approvals: SmolagentsApprovals, transfers: list[tuple[str, int]]
) -> None:
    model = ScriptedModel(['print(transfer(to="eve", amount=900))'], code=True)
    agent = approvals.guard(code_agent(model))
    run = running(lambda: agent.run("pay eve"))
    (task,) = await waiting_tasks(tmp_path)
    done = await asyncio.to_thread(
        hitl_command, tmp_path, "reject", task.task_id, "--as", "carol", "--reason", "call eve first"
    )
    assert done.returncode == 0, done.stderr
    (final,) = await waiting_tasks(tmp_path)
    done = await asyncio.to_thread(hitl_command, tmp_path, "approve", final.task_id, "--as", "carol")
    assert done.returncode == 0, done.stderr
    await asyncio.wait_for(run, DEADLINE)
    assert transfers == []
    assert "Code execution rejected by carol: call eve first" in model.last_seen_text()


AGENT = """
import faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for every thread's stack if it hangs
# what this process inherited for Ctrl-C (an ignored or blocked SIGINT would be the harness's doing)
print("SIGINT", signal.getsignal(signal.SIGINT), sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])), file=sys.stderr, flush=True)
sys.path.insert(0, sys.argv[1])
from hitl_smolagents import ScriptedModel, SmolagentsApprovals
from smol_helpers import tool_agent
from hitl_core import HITLStateMachine

approvals = SmolagentsApprovals(HITLStateMachine(sys.argv[2], load_entrypoints=False), run_id="ctrl-c")
agent = approvals.guard(tool_agent(ScriptedModel([[("transfer", {"to": "bob", "amount": 5})]])))
agent.run("pay bob")
"""


async def test_ctrl_c_while_a_person_decides_withdraws_the_request(tmp_path: Path) -> None:
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT,
        str(Path(__file__).parent),
        store_url(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert agent.stderr is not None
    try:
        (task,) = await waiting_tasks(tmp_path)
        agent.send_signal(signal.SIGINT)
        # Wait for the process itself, not for its pipes' end (anything else holding them open
        # would look like a hang of the agent); when it does hang, its threads' stacks say where.
        try:
            await asyncio.wait_for(agent.wait(), DEADLINE)
        except TimeoutError:
            agent.send_signal(signal.SIGUSR1)
            await asyncio.sleep(2)
            agent.kill()
            stacks = await asyncio.wait_for(agent.stderr.read(), 10)
            raise AssertionError(
                f"the agent did not exit within {DEADLINE:g}s of Ctrl-C; its threads:\n{stacks.decode()[-6000:]}"
            ) from None
        err = await asyncio.wait_for(agent.stderr.read(), 30)
    finally:
        if agent.returncode is None:
            agent.kill()
    assert agent.returncode != 0 and b"KeyboardInterrupt" in err
    withdrawn = (await all_tasks(tmp_path))[task.task_id]
    assert withdrawn.state is TaskState.FAILED and withdrawn.decision is None
    assert withdrawn.error == "withdrawn by the caller (the smolagents run was interrupted)"
