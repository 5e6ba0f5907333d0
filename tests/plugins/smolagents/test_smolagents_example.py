"""``examples/smolagents_payments.py`` runs offline, unattended or decided from the ``hitl`` command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hitl_core import HITLStateMachine

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "smolagents_payments.py"
HITL = [sys.executable, "-m", "hitl_core.cli"]
DEADLINE = 120.0


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(HITL_STORE=f"sqlite:///{tmp_path / 'hitl.db'}", XDG_CONFIG_HOME=str(tmp_path / "config"))
    return env


def test_the_example_runs_unattended_with_a_stand_in_reviewer(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--decide-for-me"],
        cwd=ROOT,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert "the model read: transferred 250 EUR to DE89" in done.stdout
    assert "the model read: Tool call rejected by stand-in-reviewer: over the 1000 EUR limit" in done.stdout
    assert "the model read: Code execution rejected by stand-in-reviewer: code that moves money needs a ticket" in (
        done.stdout
    )


async def pending(store: str) -> list[dict[str, Any]]:
    async with HITLStateMachine(store, load_entrypoints=False) as machine:
        return [t.model_dump(mode="json", exclude={"history"}) for t in await machine.get_pending_approvals()]


def waiting(
    tmp_path: Path, env: dict[str, str], count: int, agent: subprocess.Popen[str] | None = None
) -> list[dict[str, Any]]:
    """The waiting tasks, read from the store as the console would (the decisions go through `hitl`).

    An agent process that ended before asking fails the test at once, with what it printed.
    """
    deadline = time.monotonic() + DEADLINE
    while True:
        tasks = asyncio.run(pending(env["HITL_STORE"])) if (tmp_path / "hitl.db").exists() else []
        if len(tasks) >= count:
            return tasks
        if agent is not None and agent.poll() is not None:
            out, err = agent.communicate()
            raise AssertionError(f"the agent exited ({agent.returncode}) with {len(tasks)} waiting: {out}\n{err}")
        assert time.monotonic() < deadline, f"expected {count} waiting tasks, saw {len(tasks)}"
        time.sleep(0.1)


def hitl(env: dict[str, str], *argv: str) -> None:
    done = subprocess.run([*HITL, *argv], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(400)  # four waits of up to DEADLINE each, on a loaded machine
def test_the_examples_requests_are_decided_with_the_hitl_command_on_the_same_store(tmp_path: Path) -> None:
    env = environment(tmp_path)
    agent = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        calls = waiting(tmp_path, env, 2, agent)  # the ToolCallingAgent's two transfers of one step, each its own task
        by_amount = {t["interrupt_point"]["action"]["args"]["amount"]: t for t in calls}
        assert by_amount[48_000]["interrupt_point"]["severity"] == "critical"
        assert by_amount[48_000]["framework"] == "smolagents"
        hitl(env, "approve", str(by_amount[250]["task_id"]), "--as", "carol")
        hitl(env, "reject", str(by_amount[48_000]["task_id"]), "--as", "carol", "--message", "call the CEO back first")
        (code,) = waiting(tmp_path, env, 1, agent)  # then the CodeAgent's code
        assert code["interrupt_point"]["action"]["name"] == "python_interpreter"
        hitl(env, "approve", str(code["task_id"]), "--as", "carol")
        (final,) = waiting(tmp_path, env, 1, agent)  # and its final answer, which is code too
        hitl(env, "approve", str(final["task_id"]), "--as", "carol")
        out, err = agent.communicate(timeout=DEADLINE)
    finally:
        agent.kill()
    assert agent.returncode == 0, err
    assert "the model read: transferred 250 EUR" in out
    assert "the model read: Tool call rejected by carol: call the CEO back first" in out
    assert "the model read: transferred 75 EUR to FR14" in out
