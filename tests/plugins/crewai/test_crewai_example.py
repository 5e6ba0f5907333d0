"""``examples/crewai_publish.py`` runs offline, and its tasks are decided from the ``hitl`` command."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The example process imports CrewAI: on a loaded 2-core machine that alone can take a minute.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "crewai_publish.py"
HITL = [sys.executable, "-m", "hitl_core.cli"]


def test_the_example_runs_unattended_with_a_stand_in_reviewer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process (CrewAI is imported already); the next test runs it as its own process.
    example = runpy.run_path(str(EXAMPLE))
    answer = example["run"](f"sqlite:///{tmp_path / 'hitl.db'}", True)
    assert "tool: published 'Hitl 1.0 Is Out' in news" in answer
    assert "tool: Tool call rejected by stand-in-editor: drafts never go out; finish it first" in answer
    assert "completed" in capsys.readouterr().out


def test_the_examples_tasks_are_decided_with_the_hitl_command_on_the_same_store(tmp_path: Path) -> None:
    env = {**os.environ, "HITL_STORE": f"sqlite:///{tmp_path / 'hitl.db'}"}
    crew = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        waiting: list[dict[str, object]] = []
        deadline = time.monotonic() + 200
        while len(waiting) < 2:  # CrewAI runs the turn's two calls on two threads: both wait at once
            assert time.monotonic() < deadline, "the example's publish calls never showed up in the store"
            listed = subprocess.run(
                [*HITL, "ls", "--state", "waiting", "--json"], env=env, capture_output=True, text=True, timeout=60
            )
            assert listed.returncode == 0, listed.stderr
            waiting = json.loads(listed.stdout)
            time.sleep(0.2)
        by_section = {t["interrupt_point"]["action"]["args"]["section"]: t for t in waiting}
        assert by_section["news"]["framework"] == "crewai"
        assert by_section["news"]["interrupt_point"]["allowed_decisions"] == ["approve", "reject", "edit", "respond"]
        for command in (
            [*HITL, "approve", str(by_section["news"]["task_id"]), "--as", "dana"],
            [*HITL, "reject", str(by_section["blog"]["task_id"]), "--as", "dana", "--message", "legal has not read it"],
        ):
            decided = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert decided.returncode == 0, decided.stderr
        out, err = crew.communicate(timeout=200)
    finally:
        crew.kill()
    assert crew.returncode == 0, err
    assert "tool: published 'hitl 1.0 is out' in news" in out
    assert "tool: Tool call rejected by dana: legal has not read it" in out
