"""A batch of events committed together is all or nothing when its process is SIGKILLed mid-write.

The child (kill_mid_batch.py, a real OS process) kills itself with SIGKILL from inside the SQLite
write: after some of the batch's events were inserted in the open transaction, before COMMIT.
The store must come back with none of the batch, every earlier transition, and a chain and a
replay that verify — and take new writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskState

CHILD = Path(__file__).with_name("kill_mid_batch.py")
ROOT = Path(__file__).resolve().parents[2]
S = TaskState


async def _check_store_after_kill(url: str, killed_prefix: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as machine:
        report = await machine.verify()
        assert report.ok, report.problems
        tasks = await machine.get_all_tasks()
        assert sorted(t.task_id for t in tasks) == ["before-0", "before-1", "before-2"]
        assert all(t.state is S.AWAITING_APPROVAL and t.version == 2 for t in tasks)
        events = await machine.events()
        assert len(events) == 6 and not any(e.task_id.startswith(killed_prefix) for e in events)
        # The file is whole and unlocked: the next writer goes on from the same chain.
        await machine._start_and_request(f"{killed_prefix}-after", {}, "again?")
        assert (await machine.verify()).ok
        assert len(await machine.events()) == 8


def _run_until_killed(args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HITL_STORE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    lines = done.stdout.splitlines()
    assert done.returncode == -signal.SIGKILL, (done.returncode, lines, done.stderr[-2000:])
    assert lines == ["COMMITTED", "KILLING"], lines  # killed inside the batch: never past it


async def test_a_task_killed_between_its_start_and_its_question_is_not_in_the_store(db_url: str) -> None:
    _run_until_killed([db_url, "ask"])
    await _check_store_after_kill(db_url, "killed")


@pytest.mark.parametrize("nth", [2, 31, 60])
async def test_an_append_many_killed_at_any_insert_leaves_none_of_its_events(db_url: str, nth: int) -> None:
    _run_until_killed([db_url, "many", "30", str(nth)])
    await _check_store_after_kill(db_url, "killed")
