"""Running hitl's integrations as their callers do: real processes on a real SQLite store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hitl_core import HITLStateMachine
from hitl_core.models import TaskContext, TaskState

DEADLINE = 90.0  # seconds: generous, the machine is shared and loaded


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A hermetic environment: this test's store, no user config (only ./hitl.toml in tmp_path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(
        HITL_STORE=f"sqlite:///{tmp_path / 'hitl.db'}",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        **extra,
    )
    return env


def hitl(tmp_path: Path, *argv: str, input: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hitl_core.cli", *argv],
        input=input,
        capture_output=True,
        cwd=tmp_path,
        env=env_for(tmp_path, **env),
        timeout=DEADLINE,
    )


def start(tmp_path: Path, *argv: str, input: bytes | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hitl_core.cli", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env_for(tmp_path),
    )
    if input is not None:
        assert process.stdin is not None
        process.stdin.write(input)
    if process.stdin is not None:
        process.stdin.close()
        process.stdin = None  # closed: communicate() must not flush it
    return process


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hitl.db'}"


async def waiting_task(
    tmp_path: Path,
    process: subprocess.Popen[bytes] | None = None,
    where: Callable[[TaskContext], bool] = lambda task: True,
) -> TaskContext:
    """The one task awaiting approval (``where`` it matches), once the process under test asked.

    ``where`` skips a task a rule is about to decide: a request is committed as waiting, then
    the rule's decision in a second commit, and a poll may fall between the two.
    """
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        if (tmp_path / "hitl.db").exists():
            async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
                pending = [t for t in await machine.get_pending_approvals() if where(t)]
            if pending:
                assert len(pending) == 1, pending
                return pending[0]
        if process is not None and process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} before asking: {process.stderr.read()!r}")  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
    raise AssertionError("no task awaited approval in time")


async def all_tasks(tmp_path: Path) -> list[TaskContext]:
    if not (tmp_path / "hitl.db").exists():
        return []
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        return await machine.get_all_tasks()


async def decide(tmp_path: Path, task_id: str, how: str, *args: Any, **kwargs: Any) -> None:
    """A person decides, from another process's point of view: a machine on the same file."""
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        await getattr(machine, how)(task_id, *args, **kwargs)


def finish(process: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    out, err = process.communicate(timeout=DEADLINE)
    return process.returncode, out, err


def states(tasks: list[TaskContext]) -> dict[str, TaskState]:
    return {t.task_id: t.state for t in tasks}


async def asked_action(tmp_path: Path, task_id: str) -> dict[str, Any]:
    """The action a task asked about, from its request_approval event (the audit trail)."""
    async with HITLStateMachine(store_url(tmp_path), load_entrypoints=False) as machine:
        for event in await machine.events(task_id=task_id):
            if event.action == "request_approval":
                action: dict[str, Any] = event.data["interrupt"]["action"]
                return action
    raise AssertionError(f"{task_id} never asked")
