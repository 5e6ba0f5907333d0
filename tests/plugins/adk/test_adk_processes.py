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


async def test_a_run_paused_by_one_process_is_continued_by_another_with_decisions_made_in_a_third(
    tmp_path: Path,
) -> None:
    # Process 1 runs the agent to its pause, records it and exits.
    started = await asyncio.to_thread(
        subprocess.run, _cmd("start", tmp_path, "s-later"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    paused = json.loads(started.stdout)
    assert len(paused["paused"]) == 2
    assert paused["done"] == [["transfer", {"to": "eve", "amount": 5}]]  # under the limit: ran before the pause

    # This process decides one call; process 2 starts resuming while the other is still open.
    machine = HITLStateMachine(f"sqlite:///{tmp_path / 'hitl.db'}", load_entrypoints=False)
    by_tool = _by_tool([await machine.get_task(t) for t in paused["paused"]])
    await machine.edit(by_tool["transfer"], {"to": "bob", "amount": 90}, "alice")
    proc = await asyncio.create_subprocess_exec(
        *_cmd("resume", tmp_path, "s-later"), env=_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 90)
        assert json.loads(first) == {"resuming": "s-later"}, first
        await machine.reject(by_tool["close_account"], "bob", "the customer called back")
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    # Process 2 ran only the edited transfer; eve's ran once, in process 1.
    assert result["done"] == [["transfer", {"to": "bob", "amount": 90}]]
    assert result["seen"]["call-bob"] == {"result": "sent 90 EUR to bob"}
    assert result["seen"]["call-close"] == {
        "error": "The close_account call was rejected by bob: the customer called back"
    }
    assert {t.state for t in await machine.get_all_tasks()} == {TaskState.COMPLETED}
    await machine.close()
