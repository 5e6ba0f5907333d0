"""``examples/openai_agents_payments.py`` runs offline, and its tasks are decided from the ``hitl`` command."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The example process imports the SDK: on a loaded 2-core machine that alone can take tens of seconds.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "openai_agents_payments.py"
HITL = [sys.executable, "-m", "hitl_core.cli"]


async def test_the_example_runs_unattended_with_a_stand_in_reviewer(tmp_path: Path) -> None:
    # In this process (the SDK is imported already); the next test runs it as its own process.
    example = runpy.run_path(str(EXAMPLE))
    answer = await example["run"](f"sqlite:///{tmp_path / 'hitl.db'}", True)
    assert "transferred 250 EUR" in answer
    assert "Tool call rejected by stand-in-reviewer: 48000 EUR is over the 1000 EUR limit" in answer


def test_the_examples_tasks_are_decided_with_the_hitl_command_on_the_same_store(tmp_path: Path) -> None:
    env = {**os.environ, "HITL_STORE": f"sqlite:///{tmp_path / 'hitl.db'}"}
    agent = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        waiting: list[dict[str, object]] = []
        deadline = time.monotonic() + 200
        while len(waiting) < 2:
            assert time.monotonic() < deadline, "the example's transfers never showed up in the store"
            listed = subprocess.run(
                [*HITL, "ls", "--state", "waiting", "--json"], env=env, capture_output=True, text=True, timeout=60
            )
            assert listed.returncode == 0, listed.stderr
            waiting = json.loads(listed.stdout)
            time.sleep(0.2)
        by_amount = {t["interrupt_point"]["action"]["args"]["amount"]: t for t in waiting}
        assert by_amount[48_000]["interrupt_point"]["severity"] == "critical"
        assert by_amount[48_000]["interrupt_point"]["allowed_decisions"] == ["approve", "reject"]
        assert by_amount[48_000]["framework"] == "openai-agents"
        for command in (
            [*HITL, "approve", str(by_amount[250]["task_id"]), "--as", "carol"],
            [
                *HITL,
                "reject",
                str(by_amount[48_000]["task_id"]),
                "--as",
                "carol",
                "--message",
                "call the CEO back first",
            ],
        ):
            decided = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert decided.returncode == 0, decided.stderr
        out, err = agent.communicate(timeout=200)
    finally:
        agent.kill()
    assert agent.returncode == 0, err
    assert "transferred 250 EUR" in out
    assert "Tool call rejected by carol: call the CEO back first" in out
