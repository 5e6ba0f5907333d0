"""examples/langgraph_deploy.py runs offline as a user would run it, unattended and paused-then-resumed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.processes


def _run(*args: str, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp), **env},
    )


def test_deploy_example_runs_to_the_end_with_a_stand_in_reviewer(tmp_path: Path) -> None:
    out = _run(
        "examples/langgraph_deploy.py",
        "--store",
        f"sqlite:///{tmp_path / 'hitl.db'}",
        "--checkpoints",
        str(tmp_path / "cp.db"),
        "--decide-for-me",
        tmp=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "prod deployed with 6 replicas (by stand-in-reviewer)" in out.stdout
    assert "release note: Faster search thanks to a new index." in out.stdout


def test_deploy_example_paused_then_resumed_by_the_resumer(tmp_path: Path) -> None:
    store, checkpoints = f"sqlite:///{tmp_path / 'hitl.db'}", str(tmp_path / "cp.db")
    paused = _run(
        "examples/langgraph_deploy.py",
        "--store",
        store,
        "--checkpoints",
        checkpoints,
        "--start-only",
        "--thread",
        "rel-1",
        tmp=tmp_path,
    )
    assert paused.returncode == 0, paused.stderr
    assert "paused on 2 task(s)" in paused.stdout

    from hitl_core import HITLStateMachine

    machine = HITLStateMachine(store, load_entrypoints=False)
    for task in machine.sync.get_pending_approvals():
        machine.sync.approve(task.task_id, "carol")
    resumed = _run(
        "-m",
        "hitl_langgraph.resumer",
        "--store",
        store,
        "--graph",
        "examples/langgraph_deploy.py:graph_from_env",
        tmp=tmp_path,
        LANGGRAPH_DEPLOY_CHECKPOINTS=checkpoints,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("thread rel-1: paused, waiting on 1 task(s)")  # now deploy_prod asks
    [prod] = machine.sync.get_pending_approvals()
    assert prod.interrupt_point.action.args == {"env": "prod", "replicas": 12}
    assert prod.interrupt_point.severity == "critical"
