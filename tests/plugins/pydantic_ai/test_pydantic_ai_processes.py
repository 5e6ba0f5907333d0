"""Cross-process Pydantic AI runs: real OS processes sharing the hitl SQLite store."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskState

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def _cmd(mode: str, store: str, run_id: str) -> list[str]:
    return [sys.executable, str(HERE / "pa_agent_process.py"), mode, store, run_id]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}


async def _pending(machine: HITLStateMachine, count: int, proc: asyncio.subprocess.Process) -> list:
    async with asyncio.timeout(60):
        while len(pending := await machine.get_pending_approvals()) < count:
            assert proc.returncode is None, "the agent exited before asking"
            await asyncio.sleep(0.02)
    return pending


async def test_decisions_made_here_continue_the_run_waiting_in_another_process(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    proc = await asyncio.create_subprocess_exec(
        *_cmd("run", store, "r-wait"), env=_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    machine = HITLStateMachine(store, load_entrypoints=False)
    try:
        pending = await _pending(machine, 2, proc)
        by_tool = {t.interrupt_point.action.name: t.task_id for t in pending}
        await machine.edit(by_tool["refund"], {"order": "A-1001", "amount": 80}, "alice")
        await machine.reject(by_tool["close_account"], "bob", "the customer called back")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
        await machine.close()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["done"] == [["refund", {"order": "A-1001", "amount": 80}]]
    assert "the customer called back" in result["seen"]["close_account"]


def test_agent_exits_after_pausing_and_another_process_continues_the_run(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    started = subprocess.run(_cmd("start", store, "r-later"), env=_env(), capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    task_ids = json.loads(started.stdout)["paused"]
    assert len(task_ids) == 2

    machine = HITLStateMachine(store, load_entrypoints=False)
    machine.sync.approve(task_ids[0], "alice")
    early = subprocess.run(_cmd("resume", store, "r-later"), env=_env(), capture_output=True, text=True, timeout=120)
    assert early.returncode == 0, early.stderr
    assert sorted(json.loads(early.stdout)["paused"]) == sorted(task_ids)  # one call still undecided

    machine.sync.approve(task_ids[1], "bob")
    resumed = subprocess.run(_cmd("resume", store, "r-later"), env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["output"].startswith("answered")
    assert sorted(d[0] for d in result["done"]) == ["close_account", "refund"]
    assert {t.state for t in machine.sync.get_all_tasks()} == {TaskState.COMPLETED}
