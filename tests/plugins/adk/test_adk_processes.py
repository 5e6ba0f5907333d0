"""Cross-process ADK runs: real OS processes sharing hitl's SQLite store and ADK's SQLite sessions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskContext, TaskState

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def _cmd(mode: str, tmp_path: Path, session_id: str) -> list[str]:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    return [sys.executable, str(HERE / "adk_agent_process.py"), mode, store, str(tmp_path / "sessions.db"), session_id]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


def _by_tool(tasks: list[TaskContext]) -> dict[str, str]:
    return {t.interrupt_point.action.name: t.task_id for t in tasks if t.interrupt_point and t.interrupt_point.action}


def test_agent_exits_after_pausing_and_another_process_continues_the_run(tmp_path: Path) -> None:
    started = subprocess.run(
        _cmd("start", tmp_path, "s-later"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    paused = json.loads(started.stdout)
    assert len(paused["paused"]) == 2
    assert paused["done"] == [["transfer", {"to": "eve", "amount": 5}]]  # under the limit: ran before the pause

    machine = HITLStateMachine(f"sqlite:///{tmp_path / 'hitl.db'}", load_entrypoints=False)
    by_tool = _by_tool([machine.sync.get_task(t) for t in paused["paused"]])
    machine.sync.edit(by_tool["transfer"], {"to": "bob", "amount": 90}, "alice")
    machine.sync.reject(by_tool["close_account"], "bob", "the customer called back")

    resumed = subprocess.run(
        _cmd("resume", tmp_path, "s-later"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    # The resuming process ran only the edited transfer; eve's ran once, in the first process.
    assert result["done"] == [["transfer", {"to": "bob", "amount": 90}]]
    assert result["seen"]["call-bob"] == {"result": "sent 90 EUR to bob"}
    assert result["seen"]["call-close"] == {
        "error": "The close_account call was rejected by bob: the customer called back"
    }
    assert {t.state for t in machine.sync.get_all_tasks()} == {TaskState.COMPLETED}
    machine.sync.close()


async def test_decisions_made_here_continue_the_run_waiting_in_another_process(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_cmd("run", tmp_path, "s-wait"), env=_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    machine = HITLStateMachine(f"sqlite:///{tmp_path / 'hitl.db'}", load_entrypoints=False)
    try:
        async with asyncio.timeout(90):
            while True:
                pending = await machine.get_pending_approvals()
                if len(pending) >= 2:
                    break
                assert proc.returncode is None, "the agent exited before asking"
                await asyncio.sleep(0.02)
        by_tool = _by_tool(pending)
        await machine.approve(by_tool["transfer"], "alice")
        await machine.approve(by_tool["close_account"], "bob")
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
        await machine.close()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert sorted(name for name, _ in result["done"]) == ["close_account", "transfer", "transfer"]
    assert result["seen"]["call-bob"] == {"result": "sent 500 EUR to bob"}
