"""examples/adk_payments.py runs offline as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, TaskState

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.processes
def test_payments_example_runs_to_the_end_with_a_stand_in_reviewer(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hitl.db'}"
    out = subprocess.run(
        [
            sys.executable,
            "examples/adk_payments.py",
            "--store",
            store,
            "--sessions",
            str(tmp_path / "sessions.db"),
            "--decide-for-me",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "paid 40 EUR to Paper Co for INV-17" in out.stdout  # under the limit: nobody asked
    assert "paid 1000 EUR to Acme GmbH for INV-18" in out.stdout  # edited down from 4800
    assert "4800" not in out.stdout.split("Done:")[1]
    assert "rejected by stand-in-reviewer: they still owe us a credit note" in out.stdout
    assert "refunded 120 EUR to c-77" in out.stdout
    machine = HITLStateMachine(store, load_entrypoints=False)
    tasks = machine.sync.get_all_tasks()
    assert len(tasks) == 4 and {t.state for t in tasks} == {TaskState.COMPLETED}  # the run and three calls
    assert {t.decision.effective_type.value for t in tasks if t.decision} == {"approve", "edit", "reject"}
    machine.sync.close()
